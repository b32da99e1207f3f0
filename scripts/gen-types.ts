// Generates src/api/generated/edge-deployment.ts from the EdgeDeployment CRD's openAPIV3Schema, so the
// CRD stays the single source of truth for the resource's TypeScript types.
//   node scripts/gen-types.ts          write the file
//   node scripts/gen-types.ts --check  exit 1 if the committed file is stale
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { load } from 'js-yaml';
import { compile } from 'json-schema-to-typescript';
import type { JSONSchema } from 'json-schema-to-typescript';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const crdFile = 'crds/edgedeployments.iotedge-operator.io.yaml';
export const outputFile = 'src/api/generated/edge-deployment.ts';

/**
 * Names for the schema nodes worth a type of their own, by path (`*` = a map's values, `[]` = a list's items).
 * Nodes that share a name must be the same schema apart from their description; the generator checks that.
 */
const typeNames: Record<string, string> = {
  spec: 'EdgeDeploymentSpec',
  'spec.iotHub': 'IoTHubBinding',
  'spec.iotHub.connectionStringSecretRef': 'SecretKeyReference',
  'spec.certificates': 'CertificatesSpec',
  'spec.certificates.deviceCaSecretRef': 'SecretReference',
  'spec.agent': 'AgentSpec',
  'spec.agent.runtime': 'RuntimeSpec',
  'spec.agent.runtime.settings': 'RuntimeSettingsSpec',
  'spec.agent.runtime.settings.registryCredentials.*': 'RegistryCredentialSpec',
  'spec.agent.runtime.settings.registryCredentials.*.passwordSecretRef': 'SecretKeyReference',
  'spec.agent.systemModules': 'SystemModulesSpec',
  'spec.agent.systemModules.edgeAgent': 'EdgeAgentModuleSpec',
  'spec.agent.systemModules.edgeAgent.settings': 'ModuleSettingsSpec',
  'spec.agent.systemModules.edgeAgent.env.*': 'EnvVarSpec',
  'spec.agent.systemModules.edgeHub': 'ModuleSpecification',
  'spec.agent.systemModules.edgeHub.settings': 'ModuleSettingsSpec',
  'spec.agent.systemModules.edgeHub.env.*': 'EnvVarSpec',
  'spec.agent.modules.*': 'ModuleSpecification',
  'spec.hub': 'HubSpec',
  'spec.hub.routes.*': 'RouteSpec',
  'spec.hub.storeAndForwardConfiguration': 'StoreAndForwardSpec',
  status: 'EdgeDeploymentStatus',
  'status.conditions[]': 'EdgeDeploymentCondition',
  'status.lastDesiredStatus': 'LastDesiredStatus',
  'status.modules.*': 'ModuleStatus',
  'status.routes[]': 'RouteStatus',
  'status.iotHub': 'IoTHubStatus',
  'status.edgeHub': 'EdgeHubStatus',
  'status.edgeHub.clients.*': 'EdgeHubClientStatus',
  'status.edgeHub.upstream': 'EdgeHubUpstreamStatus',
};

/** Descriptions for types used at several places, where the first place's description would mislead. */
const sharedTypeDescriptions: Record<string, string> = {
  ModuleSpecification: 'A module IoT Edge deploys: edgeHub or a user module.',
  SecretKeyReference: 'A key in a Secret in the EdgeDeployment\'s namespace.',
};

/** Fields that exist in the schema only so that a rule can reject them with a clear message. */
const forbiddenFields = new Set(['spec.agent.runtime.settings.registryCredentials.*.password']);

type SchemaNode = Record<string, unknown>;

function isRecord(value: unknown): value is SchemaNode {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function withoutDescription(node: SchemaNode): SchemaNode {
  const { description: _description, ...rest } = node;
  return rest;
}

/** Rewrites a Kubernetes structural schema into the JSON Schema json-schema-to-typescript understands. */
function toJsonSchema(node: SchemaNode, path: string, seen: Map<string, SchemaNode>): JSONSchema {
  const description = typeof node.description === 'string' ? node.description : undefined;
  if (forbiddenFields.has(path)) return { tsType: 'never', description };
  const title = typeNames[path];
  if (title) {
    const first = seen.get(title);
    if (first) {
      if (!isDeepStrictEqual(withoutDescription(first), withoutDescription(node))) {
        throw new Error(`gen-types: ${path} is named ${title}, but its schema differs from the first ${title}`);
      }
      return { tsType: title, description };
    }
    seen.set(title, node);
  }
  const out: JSONSchema = {};
  if (title) out.title = title;
  const typeDescription = title ? (sharedTypeDescriptions[title] ?? description) : description;
  if (typeDescription) out.description = typeDescription;
  if (node['x-kubernetes-preserve-unknown-fields'] === true) {
    // The API server keeps whatever JSON is there: any value when the type is open, any fields on an object.
    return { ...out, tsType: node.type === 'object' ? 'Record<string, unknown>' : 'unknown' };
  }
  if (Array.isArray(node.enum)) out.enum = node.enum;
  switch (node.type) {
    case 'string':
    case 'boolean':
      out.type = node.type;
      break;
    case 'integer':
    case 'number':
      out.type = 'number';
      break;
    case 'array':
      out.type = 'array';
      if (isRecord(node.items)) out.items = toJsonSchema(node.items, `${path}[]`, seen);
      break;
    case 'object': {
      out.type = 'object';
      const properties = isRecord(node.properties) ? node.properties : undefined;
      if (properties) {
        out.properties = Object.fromEntries(
          Object.entries(properties).map(([name, child]) => {
            if (!isRecord(child)) throw new Error(`gen-types: ${path}.${name} is not a schema`);
            return [name, toJsonSchema(child, path ? `${path}.${name}` : name, seen)];
          }),
        );
      }
      if (Array.isArray(node.required)) out.required = node.required as string[];
      out.additionalProperties = isRecord(node.additionalProperties)
        ? toJsonSchema(node.additionalProperties, `${path}.*`, seen)
        : properties
          ? false
          : { tsType: 'unknown' };
      break;
    }
    default:
      throw new Error(`gen-types: ${path} has no type and does not preserve unknown fields, so it is not structural`);
  }
  return out;
}

/** The openAPIV3Schema of the CRD's storage version. */
export function crdSchema(crdText: string): SchemaNode {
  const crd = load(crdText);
  if (!isRecord(crd) || !isRecord(crd.spec) || !Array.isArray(crd.spec.versions)) throw new Error(`gen-types: ${crdFile} is not a CRD`);
  const version = (crd.spec.versions as unknown[]).find((v) => isRecord(v) && v.storage === true);
  if (!isRecord(version) || !isRecord(version.schema) || !isRecord(version.schema.openAPIV3Schema)) {
    throw new Error(`gen-types: ${crdFile} has no storage version with an openAPIV3Schema`);
  }
  return version.schema.openAPIV3Schema;
}

export async function generateTypes(crdText: string): Promise<string> {
  const root = crdSchema(crdText);
  const properties = isRecord(root.properties) ? root.properties : {};
  const seen = new Map<string, SchemaNode>();
  const spec = properties.spec;
  const status = properties.status;
  if (!isRecord(spec) || !isRecord(status)) throw new Error('gen-types: the schema needs spec and status');
  const schema: JSONSchema = {
    title: 'EdgeDeployment',
    description: typeof root.description === 'string' ? root.description : undefined,
    type: 'object',
    additionalProperties: false,
    required: ['apiVersion', 'kind', 'metadata', 'spec'],
    properties: {
      apiVersion: { tsType: "'iotedge-operator.io/v1alpha1'" },
      kind: { tsType: "'EdgeDeployment'" },
      metadata: { tsType: 'V1ObjectMeta' },
      spec: toJsonSchema(spec, 'spec', seen),
      status: toJsonSchema(status, 'status', seen),
    },
  };
  const body = await compile(schema, 'EdgeDeployment', {
    bannerComment: '',
    additionalProperties: false,
    unknownAny: true,
    strictIndexSignatures: false,
    declareExternallyReferenced: true,
    format: true,
    style: { singleQuote: true, printWidth: 120, trailingComma: 'all' },
  });
  return [
    `// generated by npm run gen:types from ${crdFile}; do not edit.`,
    "import type { V1ListMeta, V1ObjectMeta } from '@kubernetes/client-node';",
    '',
    body.trim(),
    '',
    'export interface EdgeDeploymentList {',
    "  apiVersion: 'iotedge-operator.io/v1alpha1';",
    "  kind: 'EdgeDeploymentList';",
    '  metadata?: V1ListMeta;',
    '  items: EdgeDeployment[];',
    '}',
    '',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const check = argv.includes('--check');
  const generated = await generateTypes(readFileSync(join(repoRoot, crdFile), 'utf8'));
  const target = join(repoRoot, outputFile);
  if (check) {
    let committed = '';
    try {
      committed = readFileSync(target, 'utf8');
    } catch {
      // A missing file is as stale as a different one.
    }
    if (committed === generated) return 0;
    process.stderr.write(`${outputFile} is stale: run npm run gen:types and commit the result\n`);
    return 1;
  }
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, generated);
  process.stdout.write(`wrote ${outputFile}\n`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
