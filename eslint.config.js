// Lint, plus the layering rule of DEVELOPERS.md: a layer may import only the layers listed for it,
// and the pure layers (api, manifest, translate, routing) may not import anything that does I/O.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

/** Each layer and the layers it may import. Anything not listed is forbidden. */
export const layers = {
  api: [],
  manifest: ['api'],
  translate: ['api', 'manifest'],
  runtime: ['api'],
  certs: ['runtime'],
  'iothub-mqtt': ['runtime'],
  routing: ['manifest'],
  store: ['runtime'],
  emulator: ['runtime', 'iothub-mqtt'],
  edgehub: ['runtime', 'manifest', 'routing', 'store', 'iothub-mqtt', 'certs'],
  controller: ['api', 'manifest', 'translate', 'runtime', 'certs'],
  iothub: ['api', 'manifest', 'translate', 'runtime', 'controller', 'certs'],
  cli: ['api', 'manifest', 'translate', 'runtime', 'controller', 'iothub', 'emulator', 'certs', 'iothub-mqtt', 'routing', 'store', 'edgehub'],
};

const pureLayers = ['api', 'manifest', 'translate', 'routing'];
const ioModules = [
  'fs', 'fs/promises', 'net', 'tls', 'http', 'https', 'http2', 'dgram', 'dns', 'child_process', 'cluster', 'worker_threads',
  'readline', 'process', 'sqlite',
].flatMap((m) => [m, `node:${m}`]);
const ioPackages = ['@kubernetes/client-node', 'azure-iot-device', 'azure-iot-device-mqtt', 'azure-iothub', 'azure-iot-common', 'aedes', 'pino', 'prom-client', 'undici', 'ws'];

const layerZones = Object.entries(layers).flatMap(([layer, allowed]) =>
  Object.keys(layers)
    .filter((other) => other !== layer && !allowed.includes(other))
    .map((other) => ({
      target: `./src/${layer}`,
      from: `./src/${other}`,
      message: `layering: src/${layer} may import only ${allowed.length ? allowed.join(', ') : 'no other layer'} (see DEVELOPERS.md)`,
    })),
);

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'coverage/**', '.cluster/**', '.demo/**', 'src/api/generated/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { 'import-x': importX },
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', URL: 'readonly', fetch: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', globalThis: 'readonly', setImmediate: 'readonly', structuredClone: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly' } },
    rules: {
      'import-x/no-restricted-paths': ['error', { zones: layerZones }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: pureLayers.map((l) => `src/${l}/**/*.ts`),
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', {
        paths: [...ioModules, ...ioPackages].map((name) => ({
          name,
          message: `${pureLayers.map((l) => `src/${l}`).join(', ')} are pure: no I/O (types may be imported with \`import type\`).`,
          allowTypeImports: true,
        })),
      }],
      'no-restricted-globals': ['error',
        { name: 'fetch', message: 'pure layers do no I/O' },
        { name: 'process', message: 'pure layers read no environment; take settings as arguments' },
        { name: 'setTimeout', message: 'pure layers do not schedule work' },
      ],
    },
  },
);
