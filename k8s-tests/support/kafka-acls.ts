/**
 * What a Strimzi KafkaUser's ACLs let it do, asked as Kafka's authorizer (StandardAuthorizer)
 * matches them: a literal resource name is that name, a prefixed one every name that starts with it.
 */
export interface Acl {
  readonly resource: { readonly type: string; readonly name: string; readonly patternType: string };
  readonly operations: readonly string[];
}

export type ResourceType = 'topic' | 'group' | 'transactionalId';

export function allows(acls: readonly Acl[], type: ResourceType, name: string, operation: string): boolean {
  return acls.some(
    ({ resource, operations }) =>
      resource.type === type &&
      operations.includes(operation) &&
      (resource.patternType === 'literal' ? name === resource.name : name.startsWith(resource.name)),
  );
}
