/**
 * One jest run for the whole repository: unit tests next to the code (services/*\/src, operator/src,
 * cdk8s/src) and the integration tests against a real Kafka broker (tests/) and a real
 * kube-apiserver (k8s-tests/). ESM TypeScript through ts-jest;
 * workspace packages resolve to their sources so tests need no build of their own (the
 * integration tests start the built services, which `npm test` builds first).
 * @type {import('jest').Config}
 */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.jest.json' }],
  },
  moduleNameMapper: {
    '^@ordersaga/runtime$': '<rootDir>/services/runtime/src/index.ts',
    '^@ordersaga/contracts$': '<rootDir>/services/contracts/src/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  testMatch: [
    '<rootDir>/services/*/src/**/*.test.ts',
    '<rootDir>/operator/src/**/*.test.ts',
    '<rootDir>/cdk8s/src/**/*.test.ts',
    '<rootDir>/tests/**/*.test.ts',
    '<rootDir>/k8s-tests/**/*.test.ts',
  ],
  globalSetup: '<rootDir>/tests/global-setup.js',
  globalTeardown: '<rootDir>/tests/global-teardown.js',
  testTimeout: 120_000,
  verbose: true,
};
