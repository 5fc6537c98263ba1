export * from './api-access.js';
export * from './config.js';
export * from './contract.js';
export * from './context.js';
export {
  DEAD_LETTER_HEADERS,
  deadLetterId,
  reasonsOf,
  REDRIVE_HEADERS,
  REDRIVE_MARKER_HEADERS,
  redriveRecords,
  type DeadLetter,
} from './dead-letters.js';
export * from './decision.js';
export * from './envelope.js';
export * from './holds.js';
export * from './http.js';
export * from './http-routing.js';
export { MESSAGE_HEADERS } from './outgoing.js';
export * from './owners.js';
export * from './kafka.js';
export * as metrics from './metrics.js';
export * from './processor.js';
export * from './publisher.js';
export * from './read-position.js';
export * from './retry.js';
export * from './service.js';
export * from './changelog.js';
export * from './retention.js';
export * from './row-store.js';
export * from './topic-follower.js';
export * from './topic-reader.js';
export * from './transactions.js';
export * from './state-table.js';
export * from './telemetry.js';
export * from './tracing.js';
