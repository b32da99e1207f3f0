// npm run test:sdk-e2e: every scenario of the SDK fidelity harness (test/sdk-e2e/README.md), with a
// per-area pass/fail summary at the end. `npm test` runs only the green subset (see ../../jest.config.js).
import baseConfig from '../../jest.config.js';

const unit = baseConfig.projects.find((p) => p.displayName === 'unit');

export default {
  rootDir: '../..',
  // A scenario (or its setup) waits at most this long; a missing feature fails, it does not hang the run.
  // Generous because the machine is shared: an emulator start alone can take 10 s under load.
  testTimeout: 90_000,
  extensionsToTreatAsEsm: unit.extensionsToTreatAsEsm,
  transform: unit.transform,
  testEnvironment: 'node',
  modulePathIgnorePatterns: unit.modulePathIgnorePatterns,
  testMatch: ['<rootDir>/test/sdk-e2e/**/*.test.ts'],
  reporters: ['default', '<rootDir>/test/sdk-e2e/summary-reporter.ts'],
};
