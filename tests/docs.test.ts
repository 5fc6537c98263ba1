/**
 * The README's topic table is the topic list of the code, not a second hand-kept copy.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SAGA_TOPICS, STATE_TOPICS, type TopicSpec } from '@ordersaga/runtime';

test('the README topic table matches services/runtime/src/topics.ts', () => {
  const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');
  const table = readme.split('<!-- topics:begin -->\n')[1]?.split('<!-- topics:end -->')[0];
  const rows = (Object.entries({ ...SAGA_TOPICS, ...STATE_TOPICS }) as Array<[string, TopicSpec]>).map(
    ([name, spec]) => {
      const to = [...spec.consumers, ...(spec.readers ?? []).map((reader) => `${reader} (lookup)`)];
      return `| \`${name}\` | ${spec.producer} | ${to.join(', ')} | ${spec.description} |`;
    },
  );
  expect(table).toBe(['| topic | from | to | what |', '|---|---|---|---|', ...rows, ''].join('\n'));
});
