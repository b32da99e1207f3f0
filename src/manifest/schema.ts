// JSON schemas for $edgeAgent and $edgeHub desired properties, and the translation of ajv's
// findings into ManifestIssues with document paths and sentences a person can act on.
// Unknown properties are refused where a typo would silently change behaviour (a module's
// `restartpolicy` would otherwise fall back to the default without a word).

import { Ajv } from 'ajv';
import type { ErrorObject } from 'ajv';
import type { ManifestIssue } from './model.ts';
import { pointerJoin } from './names.ts';

/** Keys the hub adds to desired properties ($version, $metadata) are allowed at the root. */
const twinMetadata = { '^\\$': {} };

const envSchema = {
  type: 'object',
  additionalProperties: {
    type: 'object',
    required: ['value'],
    properties: { value: { type: ['string', 'number', 'boolean'] } },
    additionalProperties: false,
  },
};

const settingsSchema = {
  type: 'object',
  required: ['image'],
  properties: {
    image: { type: 'string', minLength: 1 },
    createOptions: { type: ['string', 'object'] },
  },
  patternProperties: { '^createOptions[0-9]{2}$': { type: 'string' } },
  additionalProperties: false,
};

export const restartPolicies = ['always', 'on-failure', 'on-unhealthy', 'never'] as const;
export const desiredStatuses = ['running', 'stopped'] as const;
export const imagePullPolicies = ['on-create', 'never'] as const;

const moduleSchema = {
  type: 'object',
  required: ['type', 'settings'],
  properties: {
    version: { type: 'string' },
    type: { enum: ['docker'] },
    status: { enum: desiredStatuses },
    restartPolicy: { enum: restartPolicies },
    startupOrder: { type: 'integer', minimum: 0, maximum: 4294967295 },
    imagePullPolicy: { enum: imagePullPolicies },
    settings: settingsSchema,
    env: envSchema,
  },
  additionalProperties: false,
};

const edgeAgentModuleSchema = {
  type: 'object',
  required: ['type', 'settings'],
  properties: {
    type: { enum: ['docker'] },
    imagePullPolicy: { enum: imagePullPolicies },
    settings: settingsSchema,
    env: envSchema,
  },
  additionalProperties: false,
};

const registryCredentialSchema = {
  type: 'object',
  required: ['address', 'username'],
  properties: {
    address: { type: 'string', minLength: 1 },
    username: { type: 'string', minLength: 1 },
    password: { type: 'string' },
    passwordSecretRef: {
      type: 'object',
      required: ['name', 'key'],
      properties: { name: { type: 'string', minLength: 1 }, key: { type: 'string', minLength: 1 } },
      additionalProperties: false,
    },
  },
  additionalProperties: false,
};

export const edgeAgentDesiredSchema = {
  $id: 'iotedge-operator/edgeAgent-desired',
  type: 'object',
  required: ['schemaVersion', 'runtime', 'systemModules'],
  properties: {
    schemaVersion: { type: 'string' },
    runtime: {
      type: 'object',
      required: ['type'],
      properties: {
        type: { enum: ['docker'] },
        settings: {
          type: 'object',
          properties: {
            minDockerVersion: { type: 'string' },
            loggingOptions: { type: 'string' },
            registryCredentials: { type: 'object', additionalProperties: registryCredentialSchema },
          },
        },
      },
    },
    systemModules: {
      type: 'object',
      required: ['edgeAgent'],
      properties: { edgeAgent: edgeAgentModuleSchema, edgeHub: moduleSchema },
      additionalProperties: false,
    },
    modules: { type: 'object', additionalProperties: moduleSchema },
  },
  patternProperties: twinMetadata,
  additionalProperties: false,
};

const routeObjectSchema = {
  type: 'object',
  required: ['route'],
  properties: {
    route: { type: 'string', minLength: 1 },
    priority: { type: 'integer', minimum: 0, maximum: 9 },
    timeToLiveSecs: { type: 'integer', minimum: 0 },
  },
  additionalProperties: false,
};

export const edgeHubDesiredSchema = {
  $id: 'iotedge-operator/edgeHub-desired',
  type: 'object',
  required: ['schemaVersion'],
  properties: {
    schemaVersion: { type: 'string' },
    routes: {
      type: 'object',
      additionalProperties: { type: ['string', 'object'], minLength: 1, if: { type: 'object' }, then: routeObjectSchema },
    },
    storeAndForwardConfiguration: {
      type: 'object',
      properties: { timeToLiveSecs: { type: 'integer', minimum: 0 } },
    },
  },
  patternProperties: twinMetadata,
  additionalProperties: false,
};

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true });
const validateAgent = ajv.compile(edgeAgentDesiredSchema);
const validateHub = ajv.compile(edgeHubDesiredSchema);

function unescapeToken(token: string): string {
  return token.replace(/~1/g, '/').replace(/~0/g, '~');
}

function fieldName(instancePath: string, rootName: string): string {
  if (instancePath === '') return rootName;
  return unescapeToken(instancePath.slice(instancePath.lastIndexOf('/') + 1));
}

const typeWords: Record<string, string> = {
  string: 'a string', object: 'an object', integer: 'an integer', number: 'a number', boolean: 'a boolean', array: 'an array', null: 'null',
};

/** A short description of a value. Twins are within 32 KB by the time schemas run, which bounds the serialising. */
function describeValue(value: unknown): string {
  const text = JSON.stringify(typeof value === 'string' ? value.slice(0, 41) : value);
  return text === undefined ? String(value) : text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/** Issues reported per validated object; a hostile document could otherwise produce one per key. */
const maxSchemaIssues = 100;

/** One ajv error as a ManifestIssue under `base` (the pointer of the validated object in the document). */
export function translateAjvError(err: ErrorObject, base: string, rootName: string): ManifestIssue | undefined {
  const path = `${base}${err.instancePath}`;
  const field = fieldName(err.instancePath, rootName);
  const params = err.params as Record<string, unknown>;
  const issue = (message: string, at = path): ManifestIssue => ({ code: 'IEO_MANIFEST_SCHEMA', path: at, message });
  switch (err.keyword) {
    case 'if':
      // The failing `then` branch is reported on its own; this one only says that it failed.
      return undefined;
    case 'required': {
      const missing = String(params.missingProperty);
      return issue(`${field} is missing required property '${missing}'`, pointerJoin(path, missing));
    }
    case 'additionalProperties': {
      const extra = String(params.additionalProperty);
      return issue(`unknown property '${extra}' in ${field}`, pointerJoin(path, extra));
    }
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]).map(String);
      return issue(allowed.length === 1 ? `${field} must be ${allowed[0]}, not ${describeValue(err.data)}` : `${field} must be one of ${allowed.join(', ')} (got ${describeValue(err.data)})`);
    }
    case 'type': {
      const types = String(params.type).split(',').map((t) => typeWords[t] ?? t);
      return issue(`${field} must be ${types.join(' or ')}, not ${describeValue(err.data)}`);
    }
    case 'minLength':
      return issue(`${field} must not be empty`);
    case 'minimum':
    case 'maximum': {
      const parent = err.parentSchema as { minimum?: number; maximum?: number } | undefined;
      if (parent?.minimum !== undefined && parent.maximum !== undefined) {
        return issue(`${field} must be from ${parent.minimum} to ${parent.maximum} (got ${describeValue(err.data)})`);
      }
      return issue(`${field} must be ${String(params.comparison)} ${String(params.limit)} (got ${describeValue(err.data)})`);
    }
    default:
      return issue(`${field} ${err.message ?? 'is invalid'}`);
  }
}

function run(validate: typeof validateAgent, data: unknown, base: string, rootName: string): ManifestIssue[] {
  if (validate(data)) return [];
  const all = validate.errors ?? [];
  const issues = all.slice(0, maxSchemaIssues).map((e) => translateAjvError(e, base, rootName)).filter((i): i is ManifestIssue => i !== undefined);
  if (all.length > maxSchemaIssues) {
    issues.push({ code: 'IEO_MANIFEST_SCHEMA', path: base, message: `${rootName}: ${all.length - maxSchemaIssues} further schema errors are not listed` });
  }
  return issues;
}

export function validateAgentDesired(data: unknown, base: string): ManifestIssue[] {
  return run(validateAgent, data, base, '$edgeAgent desired properties');
}

export function validateHubDesired(data: unknown, base: string): ManifestIssue[] {
  return run(validateHub, data, base, '$edgeHub desired properties');
}
