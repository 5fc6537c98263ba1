/**
 * The SagaOrder CustomResourceDefinition, from the contracts: its names, its phases (the saga's,
 * derived from its steps) and the spec's constraints (the same schemas the Order API validates
 * an order against). `npm run chart` writes it to charts/ordersaga/crds/; it is checked for
 * staleness like every generated file.
 */
import type { TSchema } from '@sinclair/typebox';
import {
  CustomerId,
  OrderItems,
  RETRY_ANNOTATION,
  SAGAORDER_GROUP,
  SAGAORDER_KIND,
  SAGAORDER_PHASES,
  SAGAORDER_PLURAL,
  SAGAORDER_VERSION,
} from '@ordersaga/contracts';

/** The OpenAPI v3 a structural CRD schema accepts, from a TypeBox schema: types and bounds only. */
function structural(schema: TSchema): Record<string, unknown> {
  const bounds = ['minLength', 'maxLength', 'pattern', 'minimum', 'maximum', 'minItems', 'maxItems'];
  const out: Record<string, unknown> = { type: schema.type };
  for (const key of bounds) if (schema[key] !== undefined) out[key] = schema[key];
  if (schema.type === 'object') {
    out.required = schema.required ?? [];
    out.properties = Object.fromEntries(
      Object.entries(schema.properties as Record<string, TSchema>).map(([name, property]) => [
        name,
        structural(property),
      ]),
    );
  }
  if (schema.type === 'array') out.items = structural(schema.items as TSchema);
  return out;
}

const string = (description?: string) => ({ type: 'string', ...(description ? { description } : {}) });
const dateTime = { type: 'string', format: 'date-time' };

export const SAGAORDER_CRD_FILE = `${SAGAORDER_PLURAL}.${SAGAORDER_GROUP}.yaml`;

export function sagaOrderCrd() {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${SAGAORDER_PLURAL}.${SAGAORDER_GROUP}`,
      labels: { 'app.kubernetes.io/name': 'ordersaga', 'app.kubernetes.io/component': 'crd' },
    },
    spec: {
      group: SAGAORDER_GROUP,
      scope: 'Namespaced',
      names: {
        kind: SAGAORDER_KIND,
        listKind: `${SAGAORDER_KIND}List`,
        plural: SAGAORDER_PLURAL,
        singular: SAGAORDER_KIND.toLowerCase(),
        shortNames: ['so'],
        categories: ['ordersaga'],
      },
      versions: [
        {
          name: SAGAORDER_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Order', type: 'string', jsonPath: '.status.orderId' },
            { name: 'Customer', type: 'string', jsonPath: '.spec.customerId' },
            {
              name: 'Total',
              type: 'string',
              description: 'Total in EUR, known once stock is reserved',
              jsonPath: '.status.total',
            },
            { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
            { name: 'Step', type: 'string', jsonPath: '.status.currentStep' },
            { name: 'Reason', type: 'string', jsonPath: '.status.reason', priority: 0 },
            {
              name: 'Version',
              type: 'integer',
              description: 'The version of the saga it runs on',
              jsonPath: '.status.sagaVersion',
            },
            {
              name: 'Attempt',
              type: 'integer',
              description: 'Which run of the saga: 2, 3... after retries',
              jsonPath: '.status.attempt',
              priority: 1,
            },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: 'An order and the progress of its saga.',
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: {
                  type: 'object',
                  description: 'What was ordered. Immutable once the order is placed.',
                  required: ['customerId', 'items'],
                  'x-kubernetes-validations': [
                    {
                      rule: 'self == oldSelf',
                      message: 'spec is immutable; create another SagaOrder for another order',
                    },
                  ],
                  properties: { customerId: structural(CustomerId), items: structural(OrderItems) },
                },
                status: {
                  type: 'object',
                  properties: {
                    orderId: string("The saga's order id."),
                    source: { ...string('Where the order was placed.'), enum: ['http', 'kubernetes'] },
                    phase: { ...string("The saga's phase."), enum: [...SAGAORDER_PHASES] },
                    currentStep: string('The saga step (or compensation) awaiting a reply.'),
                    total: string('Total in EUR, e.g. "99.80".'),
                    reason: string('Why the order failed.'),
                    sagaVersion: {
                      type: 'integer',
                      minimum: 1,
                      description: 'The version of the saga definition it started on, and ends on.',
                    },
                    attempt: {
                      type: 'integer',
                      minimum: 1,
                      description: `Which run of the saga: 1, then 2, 3... after retries (annotation ${RETRY_ANNOTATION}).`,
                    },
                    retryTokens: {
                      type: 'array',
                      description: 'The retry tokens the saga has taken, newest last: each is taken once.',
                      items: { type: 'string' },
                    },
                    correlationId: string(),
                    traceId: string(),
                    placedAt: dateTime,
                    completedAt: dateTime,
                    observedGeneration: { type: 'integer', format: 'int64' },
                    history: {
                      type: 'array',
                      description: "The saga's steps, oldest first.",
                      items: {
                        type: 'object',
                        required: ['at', 'phase', 'event'],
                        properties: { at: dateTime, phase: string(), step: string(), event: string() },
                      },
                    },
                    conditions: {
                      type: 'array',
                      'x-kubernetes-list-type': 'map',
                      'x-kubernetes-list-map-keys': ['type'],
                      items: {
                        type: 'object',
                        required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'],
                        properties: {
                          type: { type: 'string', maxLength: 316 },
                          status: { type: 'string', enum: ['True', 'False', 'Unknown'] },
                          observedGeneration: { type: 'integer', format: 'int64', minimum: 0 },
                          lastTransitionTime: dateTime,
                          reason: {
                            type: 'string',
                            maxLength: 1024,
                            minLength: 1,
                            pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
                          },
                          message: { type: 'string', maxLength: 32768 },
                        },
                      },
                    },
                  },
                },
              },
            },
          },
        },
      ],
    },
  };
}
