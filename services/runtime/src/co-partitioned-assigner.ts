/**
 * The consumer group's partition assigner: partition p of every consumed topic goes to the same
 * replica, so a task (a partition number: its input, its state rows, its transactional ids) has
 * one owner. kafkajs's round-robin assigner deals topic-partitions out one by one, which splits
 * partition p of two topics between replicas whenever the replica count does not divide the
 * partition count.
 *
 * Each member's metadata carries the URL its HTTP API answers at, so that any replica can learn,
 * from the group's description, which replica serves a partition (owners.ts), as Kafka Streams'
 * members carry their application.server; and the partitions whose state it holds, so that a
 * replica that restarts, or a rebalance, gives each partition back to a replica that has its
 * state when the balance allows (sticky), rather than to one that must read it from the start.
 */
import { AssignerProtocol, type GroupDescription, type PartitionAssigner } from 'kafkajs';

const { MemberAssignment, MemberMetadata } = AssignerProtocol;

/**
 * Which member gets each partition number: as evenly as can be (no member two more than another);
 * first to members that hold the partition's state, those that hold fewer claiming first (a
 * replica back from a restart reclaims its few from the one that took everything meanwhile);
 * the rest dealt over the sorted members.
 */
export function coPartitionedAssignment(
  memberIds: readonly string[],
  partitionsByTopic: Readonly<Record<string, readonly number[]>>,
  held: ReadonlyMap<string, readonly number[]> = new Map(),
): Map<string, Record<string, number[]>> {
  const members = [...memberIds].sort();
  const numbers = [...new Set(Object.values(partitionsByTopic).flat())].sort((a, b) => a - b);
  const floor = Math.floor(numbers.length / members.length);
  let larger = numbers.length % members.length; // how many members may have floor + 1
  const count = new Map(members.map((m) => [m, 0]));
  const owner = new Map<number, string>();
  const give = (p: number, member: string) => {
    owner.set(p, member);
    count.set(member, count.get(member)! + 1);
    if (count.get(member) === floor + 1) larger--;
  };
  const room = (member: string, upTo: number) => count.get(member)! < upTo;
  const claimants = [...members].sort((a, b) => (held.get(a)?.length ?? 0) - (held.get(b)?.length ?? 0));
  for (const upTo of [floor, floor + 1]) {
    for (const member of claimants) {
      for (const p of held.get(member) ?? []) {
        if (owner.has(p) || !numbers.includes(p) || !room(member, upTo)) continue;
        if (upTo > floor && larger === 0) break;
        give(p, member);
      }
    }
  }
  let next = 0;
  for (const p of numbers) {
    if (owner.has(p)) continue;
    for (;;) {
      const member = members[next++ % members.length]!;
      if (room(member, floor) || (larger > 0 && room(member, floor + 1))) {
        give(p, member);
        break;
      }
    }
  }
  const assignment = new Map<string, Record<string, number[]>>(members.map((m) => [m, {}]));
  for (const [topic, partitions] of Object.entries(partitionsByTopic)) {
    for (const p of partitions) {
      const mine = assignment.get(owner.get(p)!)!;
      (mine[topic] ??= []).push(p);
    }
  }
  return assignment;
}

/** What a member says of itself in its metadata. */
interface MemberInfo {
  readonly url?: unknown;
  readonly held?: unknown;
}

function infoOf(userData: Buffer | undefined): MemberInfo {
  try {
    return JSON.parse(userData?.toString('utf8') || '{}') as MemberInfo;
  } catch {
    return {}; // a member of another version: it says nothing known here
  }
}

/**
 * The assigner of a replica whose HTTP API answers at `url`, and which holds the state of the
 * partitions `held()` says when the group rebalances.
 */
export const coPartitionedAssigner =
  (url: string, held: () => readonly number[]): PartitionAssigner =>
  ({ cluster }) => ({
    name: 'CoPartitionedAssigner',
    version: 1,
    async assign({ members, topics }) {
      const partitionsByTopic = Object.fromEntries(
        topics.map((topic) => [topic, cluster.findTopicPartitionMetadata(topic).map((m) => m.partitionId)]),
      );
      const claims = new Map<string, number[]>();
      for (const { memberId, memberMetadata } of members) {
        const claimed = infoOf(MemberMetadata.decode(memberMetadata)?.userData).held;
        if (Array.isArray(claimed))
          claims.set(
            memberId,
            claimed.filter((p) => Number.isInteger(p)),
          );
      }
      const assignment = coPartitionedAssignment(
        members.map((m) => m.memberId),
        partitionsByTopic,
        claims,
      );
      return [...assignment].map(([memberId, topicPartitions]) => ({
        memberId,
        memberAssignment: MemberAssignment.encode({
          version: 1,
          assignment: topicPartitions,
          userData: Buffer.alloc(0),
        }),
      }));
    },
    protocol({ topics }) {
      return {
        name: 'CoPartitionedAssigner',
        metadata: MemberMetadata.encode({
          version: 1,
          topics,
          userData: Buffer.from(JSON.stringify({ url, held: held() })),
        }),
      };
    },
  });

/**
 * Who serves each partition number, from a description of the group: the URL each member
 * advertised, for the partitions it was assigned (none while the group rebalances).
 */
export function ownersFromGroup(group: GroupDescription): Map<number, string> {
  const owners = new Map<number, string>();
  if (group.state !== 'Stable' || group.protocol !== 'CoPartitionedAssigner') return owners;
  for (const member of group.members) {
    const { url } = infoOf(MemberMetadata.decode(member.memberMetadata)?.userData);
    const assignment = MemberAssignment.decode(member.memberAssignment);
    if (typeof url !== 'string' || !assignment) continue;
    for (const partitions of Object.values(assignment.assignment)) for (const p of partitions) owners.set(p, url);
  }
  return owners;
}
