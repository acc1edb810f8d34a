// Reads the Kubernetes manifests under deploy/kubernetes the way the kubelet would use them: the Job's
// container arguments with $(VAR) expanded, and the environment its envFrom/env entries build. Lets a
// test run a Job's own command as local processes (the image's ENTRYPOINT is
// `node /app/bin/s3migrate.js`; locally: node bin/s3migrate.js ...argv).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { IJob } from 'kubernetes-models/batch/v1/Job';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';

/** A manifest document: at least apiVersion, kind and metadata.name. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; [key: string]: unknown };
  [key: string]: unknown;
}

export interface JobCommand {
  /** The arguments the image's ENTRYPOINT receives, i.e. s3migrate's argv (`['copy', '--to', ...]`). */
  argv: string[];
  /** The container's environment from envFrom and env (ConfigMap values, the caller's secret values). */
  env: Record<string, string>;
  /** The Job's parallelism (undefined when the manifest leaves it to Kubernetes' default of 1). */
  parallelism: number | undefined;
}

export interface JobCommandOptions {
  /** Values for the Secret's keys; the repository holds only placeholders. */
  secrets?: Record<string, string>;
  /** ConfigMap values to use instead of (or in addition to) the manifest's, e.g. a local S3MIGRATE_STATE_URL. */
  config?: Record<string, string>;
  /** Values for `valueFrom.fieldRef` entries, by field path (e.g. `metadata.name`). */
  fields?: Record<string, string>;
}

/** A record's own value for a key (never an inherited property such as `constructor`). */
function own(record: Record<string, string> | undefined, key: string): string | undefined {
  return record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined;
}

/** Every document of one YAML file, parsed; a syntax error throws. */
export function readManifests(file: string): Manifest[] {
  const documents = parseAllDocuments(readFileSync(file, 'utf8'));
  const manifests: Manifest[] = [];
  for (const document of documents) {
    const problem = document.errors[0] ?? document.warnings[0];
    if (problem) throw new Error(`${file}: ${problem.message}`);
    const value: unknown = document.toJS();
    if (value === null || value === undefined) continue; // an empty document (a trailing ---)
    manifests.push(value as Manifest);
  }
  return manifests;
}

/** Every manifest in the YAML files of one folder, with the file each came from. */
export function readManifestFolder(folder: string): Array<{ file: string; manifest: Manifest }> {
  return readdirSync(folder)
    .filter((name) => /\.ya?ml$/.test(name))
    .sort()
    .flatMap((name) => readManifests(path.join(folder, name)).map((manifest) => ({ file: path.join(folder, name), manifest })));
}

/**
 * Kubernetes' $(VAR) expansion (k8s.io/kubernetes third_party/forked/golang/expansion): `$(NAME)` becomes
 * the variable's value, `$$` a literal `$`, and a reference to an undefined variable stays as written.
 */
export function expandReferences(input: string, lookup: (name: string) => string | undefined, unresolved: string[] = []): string {
  let output = '';
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== '$' || cursor + 1 >= input.length) continue;
    output += input.slice(checkpoint, cursor);
    const rest = input.slice(cursor + 1);
    let advance = 1;
    if (rest[0] === '$') {
      output += '$';
    } else if (rest[0] === '(') {
      const close = rest.indexOf(')');
      if (close === -1) {
        output += '$(';
      } else {
        const name = rest.slice(1, close);
        const value = lookup(name);
        if (value === undefined) unresolved.push(name);
        output += value ?? `$(${name})`;
        advance = close + 1;
      }
    } else {
      output += `$${rest[0]}`;
    }
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return output + input.slice(checkpoint);
}

/**
 * Resolves the one container of the Job in `yamlPath`: its arguments with $(VAR) expanded and its
 * environment. ConfigMaps are looked up by name among the YAML files of the same folder; Secret values
 * come from the caller (envFrom a Secret yields every value given). Anything the kubelet would refuse
 * to start (a missing ConfigMap or key, an unresolved reference in the arguments) throws.
 */
export function jobCommand(yamlPath: string, options: JobCommandOptions = {}): JobCommand {
  const jobs = readManifests(yamlPath).filter((manifest) => manifest.kind === 'Job') as unknown as IJob[];
  if (jobs.length !== 1) throw new Error(`${yamlPath}: expected exactly one Job, found ${jobs.length}`);
  const job = jobs[0]!;
  const containers = job.spec?.template.spec?.containers ?? [];
  if (containers.length !== 1) throw new Error(`${yamlPath}: expected one container, found ${containers.length}`);
  const container = containers[0]!;
  if (container.command !== undefined) {
    throw new Error(`${yamlPath}: the container sets a command; expected only args for the image's ENTRYPOINT`);
  }

  const configMaps = new Map<string, Record<string, string>>();
  for (const { manifest } of readManifestFolder(path.dirname(yamlPath))) {
    if (manifest.kind !== 'ConfigMap') continue;
    const data = (manifest as unknown as IConfigMap).data ?? {};
    configMaps.set(manifest.metadata.name, { ...data, ...options.config });
  }
  const configMap = (name: string, optional: boolean | undefined): Record<string, string> | undefined => {
    const data = configMaps.get(name);
    if (!data && !optional) throw new Error(`${yamlPath}: ConfigMap ${name} is not defined in ${path.dirname(yamlPath)}`);
    return data;
  };
  const secrets = options.secrets ?? {};

  // envFrom first, in order (a later source wins a duplicate key), then env, which may refer to both.
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    const prefix = source.prefix ?? '';
    const values = source.configMapRef
      ? configMap(source.configMapRef.name ?? '', source.configMapRef.optional)
      : source.secretRef
        ? secrets
        : undefined;
    for (const [key, value] of Object.entries(values ?? {})) env[prefix + key] = value;
  }
  for (const variable of container.env ?? []) {
    const from = variable.valueFrom;
    let value: string | undefined;
    if (from === undefined) {
      value = expandReferences(variable.value ?? '', (name) => own(env, name));
    } else if (from.configMapKeyRef) {
      const ref = from.configMapKeyRef;
      value = own(configMap(ref.name ?? '', ref.optional), ref.key);
      if (value === undefined && !ref.optional) throw new Error(`${yamlPath}: ${variable.name}: key ${ref.key} is not in ConfigMap ${ref.name}`);
    } else if (from.secretKeyRef) {
      const ref = from.secretKeyRef;
      value = own(secrets, ref.key);
      if (value === undefined && !ref.optional) throw new Error(`${yamlPath}: ${variable.name}: no value given for secret key ${ref.key}`);
    } else if (from.fieldRef) {
      value = own(options.fields, from.fieldRef.fieldPath);
      if (value === undefined) throw new Error(`${yamlPath}: ${variable.name}: no value given for field ${from.fieldRef.fieldPath}`);
    } else {
      throw new Error(`${yamlPath}: ${variable.name}: unsupported valueFrom ${JSON.stringify(from)}`);
    }
    if (value !== undefined) env[variable.name] = value;
  }

  const unresolved: string[] = [];
  const argv = (container.args ?? []).map((arg) => expandReferences(arg, (name) => own(env, name), unresolved));
  if (unresolved.length > 0) {
    throw new Error(`${yamlPath}: the arguments refer to undefined variables: ${[...new Set(unresolved)].join(', ')}`);
  }
  return { argv, env, parallelism: job.spec?.parallelism };
}
