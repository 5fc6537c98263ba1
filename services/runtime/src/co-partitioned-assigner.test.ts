import { coPartitionedAssignment } from './co-partitioned-assigner.js';

const partitionsOf = (n: number) => Array.from({ length: n }, (_, i) => i);

test.each([1, 2, 3, 4, 5, 7])(
  '%i members, 6 partitions of three topics: partition p of every topic to one member',
  (count) => {
    const members = Array.from({ length: count }, (_, i) => `member-${i}`);
    const topics = { a: partitionsOf(6), b: partitionsOf(6), c: partitionsOf(6) };
    const assignment = coPartitionedAssignment(members, topics);
    const ownerOf = new Map<string, string>();
    for (const [member, byTopic] of assignment)
      for (const [topic, partitions] of Object.entries(byTopic))
        for (const p of partitions) ownerOf.set(`${topic}/${p}`, member);
    for (const p of partitionsOf(6)) {
      const owners = new Set(['a', 'b', 'c'].map((t) => ownerOf.get(`${t}/${p}`)));
      expect({ p, owners: owners.size }).toEqual({ p, owners: 1 });
    }
    expect(ownerOf.size).toBe(18); // every topic-partition assigned, once
    // Spread evenly: no member has two partitions more than another.
    const counts = [...assignment.values()].map((byTopic) => (byTopic.a ?? []).length);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
  },
);

test('the same members in another order get the same assignment', () => {
  const topics = { a: partitionsOf(4) };
  expect(coPartitionedAssignment(['y', 'x', 'z'], topics)).toEqual(coPartitionedAssignment(['z', 'x', 'y'], topics));
});

test('sticky: a partition goes back to a member that holds its state, as far as the balance allows', () => {
  const topics = { a: partitionsOf(6), b: partitionsOf(6) };
  const owned = (assignment: Map<string, Record<string, number[]>>, member: string) =>
    [...(assignment.get(member)!.a ?? [])].sort();
  // Back from a restart with 1, 3, 5 while `y` took all six: each gets its own half back.
  const back = coPartitionedAssignment(
    ['x', 'y'],
    topics,
    new Map([
      ['x', [1, 3, 5]],
      ['y', [0, 1, 2, 3, 4, 5]],
    ]),
  );
  expect([owned(back, 'x'), owned(back, 'y')]).toEqual([
    [1, 3, 5],
    [0, 2, 4],
  ]);
  expect(back.get('x')!.b!.sort()).toEqual([1, 3, 5]); // co-partitioned still
  // One holding all six, a newcomer holding none: the balance wins, three each.
  const joined = coPartitionedAssignment(['x', 'y'], topics, new Map([['y', partitionsOf(6)]]));
  expect([owned(joined, 'x').length, owned(joined, 'y').length]).toEqual([3, 3]);
  expect(owned(joined, 'y').every((p) => p < 6)).toBe(true);
  // More members than partitions: each partition once, no member two.
  const many = coPartitionedAssignment(['a', 'b', 'c', 'd'], { t: partitionsOf(3) }, new Map([['d', [0, 1, 2]]]));
  expect([...many.values()].map((m) => (m.t ?? []).length).sort()).toEqual([0, 1, 1, 1]);
});
