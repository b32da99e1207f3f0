// Four projects: unit tests need no cluster; integration and e2e share one control plane
// that the global setup starts (or reuses, see README "Tests"); sdk-e2e is the green subset of the SDK
// fidelity harness (all of it: npm run test:sdk-e2e, test/sdk-e2e/README.md).
const transform = {
  // keepImportAttributes: `with { type: 'json' }` reaches Node, which warns (and will refuse) JSON imports without it.
  '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2023', experimental: { keepImportAttributes: true } }, module: { type: 'es6' } }],
};
// Areas of the SDK fidelity harness that pass in full: module identities over REST, device twins and
// direct methods over MQTT (methods also over WebSockets), module twins, telemetry, server validation,
// the registry, configurations, authentication, cloud-to-device messages (persistent sessions and QoS 1
// redelivery in the MQTT core), jobs, and module messaging. Each starts its own emulator, no cluster.
// Add an area here once it passes in full.
const sdkE2eInNpmTest = [
  'module-crud', 'device-twin.mqtt', 'device-methods.mqtt', 'device-methods.mqttws', 'module-twin.mqtt', 'd2c.mqtt', 'server-validation',
  'registry', 'configurations', 'authentication.mqtt', 'c2d.mqtt', 'jobs', 'module-messaging.mqtt',
];

const common = {
  extensionsToTreatAsEsm: ['.ts'],
  transform,
  testEnvironment: 'node',
  // The worker's containerd and kubelet state lives under .cluster/; jest need not crawl it.
  modulePathIgnorePatterns: ['<rootDir>/.cluster/'],
};

export default {
  // Integration and e2e tests wait on a real cluster; jest only honours testTimeout globally.
  testTimeout: 240_000,
  // Test files run in a child process, replaced when its heap is past this after a file. On 2 cores jest
  // would run them all in its own process, where each file's module graph (the IoT Hub SDKs, the Kubernetes
  // client, the emulator) stays reachable: that process grew to 3 GB by the end of a run, and a CI run's
  // jest was killed (SIGKILL) after 710 s.
  workerIdleMemoryLimit: '512MB',
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      // test/security: the adversarial suite, on the same real API server.
      testMatch: ['<rootDir>/test/integration/**/*.test.ts', '<rootDir>/test/security/**/*.test.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/e2e/**/*.test.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
    },
    { ...common, displayName: 'sdk-e2e', testMatch: sdkE2eInNpmTest.map((area) => `<rootDir>/test/sdk-e2e/${area}.test.ts`) },
  ],
};
