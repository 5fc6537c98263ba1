/**
 * A service's contract as the runtime takes it: its name and port from the registry, its topics
 * from the topic list, the schemas of every message.
 */
import type { ServiceContract } from '@ordersaga/runtime';
import { COMPONENTS, type ServiceName } from './components.js';
import { PAYLOADS } from './messages.js';
import { allTopics, STATE_TOPICS, topicsConsumedBy, type StateTopic, type TopicSpec } from './topics.js';

const stateTopics = Object.entries(STATE_TOPICS) as Array<[StateTopic, TopicSpec]>;

/** The state topic a service writes: the compacted topic it produces. */
export function stateTopicOf(service: ServiceName): StateTopic {
  const found = stateTopics.find(([, spec]) => spec.producer === service);
  if (!found) throw new Error(`topics.ts has no state topic produced by ${service}`);
  return found[0];
}

/** The state topics a service may read as lookups: those that list it among their readers. */
export function lookupsOf(service: ServiceName): StateTopic[] {
  return stateTopics
    .filter(([, spec]) => (spec.readers as readonly string[] | undefined)?.includes(service))
    .map(([name]) => name);
}

export function serviceContract(service: ServiceName): ServiceContract {
  return {
    name: service,
    port: COMPONENTS[service].port,
    consumes: topicsConsumedBy(service),
    stateTopic: stateTopicOf(service),
    lookups: lookupsOf(service),
    topics: allTopics,
    payloads: PAYLOADS,
  };
}
