/**
 * A service's contract as the runtime takes it: its name and port from the registry, its topics
 * from the topic list, the schemas of every message.
 */
import type { ServiceContract } from '@ordersaga/runtime';
import { COMPONENTS, type ServiceName } from './components.js';
import { PAYLOADS } from './messages.js';
import { allTopics, lookupsOf, stateTopicOf, topicsConsumedBy } from './topics.js';

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
