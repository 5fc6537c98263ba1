/**
 * The envelope on topics of the test's own: the runtime knows no application topic, only the
 * payload schemas a contract gives it.
 */
import { Type } from '@sinclair/typebox';
import { encode, EnvelopeCodec, initial, PoisonMessageError, reply } from './envelope.js';

const now = new Date('2026-01-01T00:00:00.000Z');
const codec = new EnvelopeCodec({
  'job.started': Type.Object({ owner: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
  'job.done': Type.Object({ result: Type.Integer() }, { additionalProperties: false }),
});

test('a message survives encode/decode and its reply keeps the correlation', () => {
  const started = initial('job.started', 'o-1', { owner: 'alice' }, now, 'corr-1');
  const decoded = codec.decode('job.started', encode(started.envelope));
  expect(decoded).toEqual(started.envelope);
  const next = reply(decoded, 'job.done', { result: 42 }, now);
  expect(next.envelope).toMatchObject({
    orderId: 'o-1',
    correlationId: 'corr-1',
    causationId: started.envelope.id,
    version: 1,
  });
  expect(next.envelope.id).not.toBe(started.envelope.id);
});

test.each([
  ['bad JSON', Buffer.from('{nope'), /^invalid JSON/],
  ['a tombstone', null, /tombstone/],
  ['a wrong type', encode(initial('job.done', 'o', { result: 1 }, now).envelope), /schema violation: \/type/],
  [
    'a payload against its schema',
    encode(initial('job.started', 'o', { owner: '' }, now).envelope),
    /\/payload\/owner/,
  ],
  ['a missing field', Buffer.from(JSON.stringify({ id: 'x', type: 'job.started' })), /schema violation/],
])('%s is a poison message with a reason', (_name, value, reason) => {
  expect(() => codec.decode('job.started', value)).toThrow(PoisonMessageError);
  expect(() => codec.decode('job.started', value)).toThrow(reason);
});

test('a topic the contract has no schema for is a poison message too', () => {
  expect(() => codec.decode('job.unknown', encode(initial('job.done', 'o', { result: 1 }, now).envelope))).toThrow(
    /no schema for topic job.unknown/,
  );
});
