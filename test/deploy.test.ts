// The fleet deployment files: Kubernetes manifests validated against the Kubernetes schemas, the
// copy Job's failure handling and command, the Dockerfile and the systemd units. No cluster and no
// container engine needed.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { Job, type IJob } from 'kubernetes-models/batch/v1/Job';
import { ConfigMap, type IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret, type ISecret } from 'kubernetes-models/v1/Secret';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { expandReferences, jobCommand, readManifestFolder, readManifests, type Manifest } from './support/k8s-job.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const K8S = path.join(ROOT, 'deploy/kubernetes');
const SYSTEMD = path.join(ROOT, 'deploy/systemd');
const COPY_JOB = path.join(K8S, 'copy-job.yaml');
const CATALOG_JOB = path.join(K8S, 'catalog-job.yaml');

/** Variables the fleet files add to those of .env.example. */
const FLEET_VARIABLES = ['S3MIGRATE_FROM', 'S3MIGRATE_TO', 'S3MIGRATE_MIGRATION', 'S3MIGRATE_STATE_URL', 'PGPASSWORD'];

const MODELS: Record<string, new (data: never) => { validate(): void }> = { Job, ConfigMap, Secret, Namespace };

function only<T extends Manifest>(file: string, kind: string): T {
  const found = readManifests(file).filter((manifest) => manifest.kind === kind);
  expect(found, `${path.basename(file)}: one ${kind}`).toHaveLength(1);
  return found[0] as T;
}

const copyJob = () => only<Manifest & IJob>(COPY_JOB, 'Job');
const catalogJob = () => only<Manifest & IJob>(CATALOG_JOB, 'Job');
const configMap = () => only<Manifest & IConfigMap>(path.join(K8S, 'configmap.yaml'), 'ConfigMap');
const secretExample = () => only<Manifest & ISecret>(path.join(K8S, 'secret.example.yaml'), 'Secret');
const containerOf = (job: IJob): IContainer => {
  const containers = job.spec?.template.spec?.containers ?? [];
  expect(containers).toHaveLength(1);
  return containers[0]!;
};

/**
 * Every property name any Kubernetes schema knows, read from kubernetes-models' compiled validators.
 * The schemas allow unknown properties, so a misspelt field (`parallelsim`) validates; the API server
 * would drop or refuse it. Keys of free-form maps (labels, ConfigMap data, resource amounts) are skipped.
 */
function knownFieldNames(): Set<string> {
  const models = createRequire(import.meta.url).resolve('kubernetes-models');
  // ObjectMeta, LabelSelector and friends live in @kubernetes-models/apimachinery.
  const apimachinery = createRequire(models).resolve('@kubernetes-models/apimachinery');
  const names = new Set<string>();
  for (const schemas of [models, apimachinery].map((entry) => path.join(path.dirname(entry), '_schemas'))) {
    for (const file of readdirSync(schemas).filter((name) => name.endsWith('.mjs'))) {
      const code = readFileSync(path.join(schemas, file), 'utf8');
      for (const match of code.matchAll(/\bdata\.([A-Za-z_$][\w$]*)|\bdata\["([^"]+)"\]/g)) names.add(match[1] ?? match[2]!);
    }
  }
  return names;
}
const FREE_FORM = new Set(['labels', 'annotations', 'data', 'stringData', 'binaryData', 'limits', 'requests', 'nodeSelector', 'matchLabels']);
let fieldNames: Set<string> | undefined;
function unknownFields(value: unknown, at = ''): string[] {
  fieldNames ??= knownFieldNames();
  if (Array.isArray(value)) return value.flatMap((item, index) => unknownFields(item, `${at}[${index}]`));
  if (value === null || typeof value !== 'object') return [];
  const parent = at.split('.').pop()!.replace(/\[\d+\]$/, '');
  if (FREE_FORM.has(parent)) return [];
  return Object.entries(value).flatMap(([key, child]) => [
    ...(fieldNames!.has(key) ? [] : [`${at}.${key}`]),
    ...unknownFields(child, `${at}.${key}`),
  ]);
}

/** The action the Job controller takes for a failed pod: the first matching rule, else the default count. */
function failureAction(job: IJob, container: string, exitCode: number, conditions: string[] = []): string {
  for (const rule of job.spec?.podFailurePolicy?.rules ?? []) {
    if (rule.onExitCodes) {
      const { containerName, operator, values } = rule.onExitCodes;
      if (containerName !== undefined && containerName !== container) continue;
      if (exitCode === 0) continue;
      if (operator === 'In' ? values.includes(exitCode) : !values.includes(exitCode)) return rule.action;
    } else if (rule.onPodConditions?.some((pattern) => conditions.includes(pattern.type) && pattern.status === 'True')) {
      return rule.action;
    }
  }
  return 'Count (default)';
}

/** Kubernetes quantities -> bytes or cores. */
function quantity(text: string | number | undefined): number {
  if (typeof text === 'number') return text;
  const match = /^([\d.]+)(m|Ki|Mi|Gi|k|M|G)?$/.exec(text ?? '');
  if (!match) throw new Error(`not a quantity: ${text}`);
  const units: Record<string, number> = { '': 1, m: 1e-3, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, k: 1e3, M: 1e6, G: 1e9 };
  return Number(match[1]) * units[match[2] ?? '']!;
}

/** Dockerfile instructions, continuation lines joined, comments dropped. */
function dockerInstructions(): Array<{ instruction: string; args: string }> {
  const joined = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const [instruction, ...rest] = line.split(/\s+/);
      return { instruction: instruction!.toUpperCase(), args: rest.join(' ') };
    });
}

/** A systemd unit's settings: every value of every key (keys may repeat). */
function unitSettings(file: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (match) settings.set(match[1]!, [...(settings.get(match[1]!) ?? []), match[2]!]);
  }
  return settings;
}

function seconds(text: string): number {
  const match = /^(\d+)\s*(s|min|m|h)?$/.exec(text.trim());
  if (!match) throw new Error(`not a time span: ${text}`);
  return Number(match[1]) * { s: 1, min: 60, m: 60, h: 3600 }[match[2] ?? 's']!;
}

describe('Kubernetes manifests', () => {
  const files = readdirSync(K8S).filter((name) => /\.ya?ml$/.test(name));

  it('has the files the runbook uses', () => {
    for (const name of ['namespace.yaml', 'secret.example.yaml', 'configmap.yaml', 'catalog-job.yaml', 'copy-job.yaml', 'README.md']) {
      expect(existsSync(path.join(K8S, name)), name).toBe(true);
    }
  });

  it.each(files)('%s: every document is valid against the Kubernetes schema, no unknown field', (name) => {
    const manifests = readManifests(path.join(K8S, name));
    expect(manifests.length).toBeGreaterThan(0);
    for (const manifest of manifests) {
      const Model = MODELS[manifest.kind];
      expect(Model, `${name}: a model for kind ${manifest.kind}`).toBeDefined();
      expect(() => new Model!(manifest as never).validate()).not.toThrow();
      expect(unknownFields(manifest), `${name}: fields no Kubernetes schema knows`).toEqual([]);
    }
  });

  it('the checks above do catch mistakes (wrong type, misspelt field, unknown action)', () => {
    const job = copyJob();
    const spec = job.spec!;
    expect(() => new Job({ ...job, spec: { ...spec, parallelism: '4' as never } }).validate()).toThrow(/parallelism/);
    expect(unknownFields({ ...job, spec: { ...spec, parallelsim: 4 } })).toEqual(['.spec.parallelsim']);
    const rules = [{ action: 'Restart' as never, onExitCodes: { operator: 'In' as const, values: [3] } }];
    expect(() => new Job({ ...job, spec: { ...spec, podFailurePolicy: { rules } } }).validate()).toThrow(/action/);
  });

  it('names no namespace, so the runbook can apply them with -n', () => {
    for (const { file, manifest } of readManifestFolder(K8S)) {
      if (manifest.kind !== 'Namespace') expect(manifest.metadata.namespace, file).toBeUndefined();
    }
  });
});

describe('ConfigMap and Secret', () => {
  it('the state URL is a postgres:// URL without a password', () => {
    const url = new URL(configMap().data!.S3MIGRATE_STATE_URL!);
    expect(url.protocol).toBe('postgres:');
    expect(url.username).not.toBe('');
    expect(url.password).toBe('');
  });

  it('the Secret example holds placeholders only, for both sides and the database', () => {
    const values = secretExample().stringData!;
    expect(Object.keys(values).sort()).toEqual(
      ['DEST_AWS_ACCESS_KEY_ID', 'DEST_AWS_SECRET_ACCESS_KEY', 'PGPASSWORD', 'SOURCE_AWS_ACCESS_KEY_ID', 'SOURCE_AWS_SECRET_ACCESS_KEY'],
    );
    for (const value of Object.values(values)) expect(value).toMatch(/^REPLACE_WITH_[A-Z_]+$/);
    expect(secretExample().data).toBeUndefined();
  });

  it('every key is a variable s3migrate or the manifests read, and no secret sits in the ConfigMap', () => {
    const documented = new Set(
      [...readFileSync(path.join(ROOT, '.env.example'), 'utf8').matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map((match) => match[1]!),
    );
    const known = new Set([...documented, ...FLEET_VARIABLES]);
    const keys = [...Object.keys(configMap().data!), ...Object.keys(secretExample().stringData!)];
    expect(keys.filter((key) => !known.has(key))).toEqual([]);
    expect(Object.keys(configMap().data!).filter((key) => /SECRET|PASSWORD|TOKEN|ACCESS_KEY/.test(key))).toEqual([]);
  });

  it('filled-in Secrets are ignored by git', () => {
    const ignored = readFileSync(path.join(ROOT, '.gitignore'), 'utf8').split('\n').map((line) => line.trim());
    expect(ignored).toEqual(expect.arrayContaining(['deploy/kubernetes/secret.yaml', 'credentials.env', '.env']));
  });
});

describe('copy Job', () => {
  it('is a work queue: parallelism set, completions unset, restartPolicy Never', () => {
    const spec = copyJob().spec!;
    expect(spec.parallelism).toBeGreaterThanOrEqual(2);
    expect(spec.completions).toBeUndefined();
    expect(spec.completionMode ?? 'NonIndexed').toBe('NonIndexed');
    expect(spec.template.spec!.restartPolicy).toBe('Never');
    // One outage failing every worker at once must not exhaust it.
    expect(spec.backoffLimit).toBeGreaterThanOrEqual(spec.parallelism!);
  });

  it('podFailurePolicy: 3 and 2 fail the Job without restarts, 1 is retried, disruptions and clean stops are not counted', () => {
    const job = copyJob();
    const name = containerOf(job).name;
    expect(failureAction(job, name, 3)).toBe('FailJob');
    expect(failureAction(job, name, 2)).toBe('FailJob');
    expect(failureAction(job, name, 1)).toBe('Count');
    expect(failureAction(job, name, 130)).toBe('Ignore');
    expect(failureAction(job, name, 137)).toBe('Count (default)');
    expect(failureAction(job, name, 130, ['DisruptionTarget'])).toBe('Ignore');
    expect(failureAction(job, name, 1, ['DisruptionTarget'])).toBe('Ignore');
    // Every exit-code rule names the container that exists.
    for (const rule of job.spec!.podFailurePolicy!.rules) {
      if (rule.onExitCodes) expect(rule.onExitCodes.containerName).toBe(name);
    }
  });

  it('gives a worker time to finish its in-flight objects after SIGTERM', () => {
    expect(copyJob().spec!.template.spec!.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(120);
  });

  it('requests about a core and memory with headroom over the benchmark peak', () => {
    const { requests, limits } = containerOf(copyJob()).resources!;
    expect(quantity(requests!.cpu)).toBeGreaterThanOrEqual(1);
    // npm run bench: peak RSS up to ~380 MiB at the default --max-memory 256MiB.
    expect(quantity(requests!.memory)).toBeGreaterThanOrEqual(400 * 1024 ** 2);
    expect(quantity(limits!.memory)).toBeGreaterThan(quantity(requests!.memory));
    expect(quantity(limits!.cpu)).toBeGreaterThanOrEqual(quantity(requests!.cpu));
  });

  it('runs `s3migrate copy` with --to, --state and --migration from the ConfigMap, credentials from the Secret', () => {
    const container = containerOf(copyJob());
    expect(container.command).toBeUndefined(); // the image's ENTRYPOINT: node /app/bin/s3migrate.js
    expect(container.args!.slice(0, 7)).toEqual([
      'copy', '--to', '$(S3MIGRATE_TO)', '--state', '$(S3MIGRATE_STATE_URL)', '--migration', '$(S3MIGRATE_MIGRATION)',
    ]);
    expect(container.envFrom).toEqual([
      { configMapRef: { name: configMap().metadata.name } },
      { secretRef: { name: secretExample().metadata.name } },
    ]);
  });

  it('runs as a non-root user, read-only root filesystem, no privilege escalation', () => {
    for (const job of [copyJob(), catalogJob()]) {
      const pod = job.spec!.template.spec!;
      expect(pod.securityContext!.runAsNonRoot).toBe(true);
      expect(pod.securityContext!.runAsUser).toBeGreaterThan(0);
      const security = containerOf(job).securityContext!;
      expect(security.allowPrivilegeEscalation).toBe(false);
      expect(security.readOnlyRootFilesystem).toBe(true);
      expect(security.capabilities!.drop).toEqual(['ALL']);
    }
  });
});

describe('catalog Job', () => {
  it('is one pod running `s3migrate catalog` on the same state, image and settings as the copy Job', () => {
    const job = catalogJob();
    expect(job.spec!.parallelism ?? 1).toBe(1);
    expect(job.spec!.completions ?? 1).toBe(1);
    expect(job.spec!.template.spec!.restartPolicy).toBe('Never');
    const container = containerOf(job);
    expect(container.args!.slice(0, 7)).toEqual([
      'catalog', '--from', '$(S3MIGRATE_FROM)', '--state', '$(S3MIGRATE_STATE_URL)', '--migration', '$(S3MIGRATE_MIGRATION)',
    ]);
    expect(container.image).toBe(containerOf(copyJob()).image);
    expect(container.envFrom).toEqual(containerOf(copyJob()).envFrom);
    expect(failureAction(job, container.name, 2)).toBe('FailJob');
    expect(failureAction(job, container.name, 130)).toBe('Ignore');
  });
});

describe('jobCommand (test/support/k8s-job.ts)', () => {
  const secrets = {
    SOURCE_AWS_ACCESS_KEY_ID: 'src-id',
    SOURCE_AWS_SECRET_ACCESS_KEY: 'src-secret',
    DEST_AWS_ACCESS_KEY_ID: 'dst-id',
    DEST_AWS_SECRET_ACCESS_KEY: 'dst-secret',
    PGPASSWORD: 'pg-secret',
  };

  it("resolves the copy Job's arguments and environment from the ConfigMap and the given secrets", () => {
    const data = configMap().data!;
    const { argv, env, parallelism } = jobCommand(COPY_JOB, { secrets });
    expect(argv).toEqual([
      'copy', '--to', data.S3MIGRATE_TO, '--state', data.S3MIGRATE_STATE_URL, '--migration', data.S3MIGRATE_MIGRATION, '--workers', '1',
    ]);
    expect(env).toEqual({ ...data, ...secrets });
    expect(parallelism).toBe(copyJob().spec!.parallelism);
  });

  it('lets the caller point the Job at a local database and endpoints', () => {
    const local = { S3MIGRATE_STATE_URL: 'postgres://tester@127.0.0.1:5432/s3migrate_test', DEST_ENDPOINT: 'http://127.0.0.1:4569' };
    const { argv, env } = jobCommand(COPY_JOB, { secrets, config: local });
    expect(argv[argv.indexOf('--state') + 1]).toBe(local.S3MIGRATE_STATE_URL);
    expect(env.S3MIGRATE_STATE_URL).toBe(local.S3MIGRATE_STATE_URL);
    expect(env.DEST_ENDPOINT).toBe(local.DEST_ENDPOINT);
  });

  it('resolves the catalog Job too', () => {
    const data = configMap().data!;
    expect(jobCommand(CATALOG_JOB, { secrets }).argv).toEqual([
      'catalog', '--from', data.S3MIGRATE_FROM, '--state', data.S3MIGRATE_STATE_URL, '--migration', data.S3MIGRATE_MIGRATION,
    ]);
  });

  it('expands $(VAR) as Kubernetes does', () => {
    const vars: Record<string, string> = { A: 'x', B: 'y' };
    const unresolved: string[] = [];
    const lookup = (name: string) => vars[name];
    expect(expandReferences('$(A)-$(B)', lookup)).toBe('x-y');
    expect(expandReferences('$$(A)', lookup)).toBe('$(A)');
    expect(expandReferences('$(C)', lookup, unresolved)).toBe('$(C)');
    expect(unresolved).toEqual(['C']);
    expect(expandReferences('cost $5 $(A', lookup)).toBe('cost $5 $(A');
    expect(expandReferences('end$', lookup)).toBe('end$');
  });

  it('refuses what the kubelet would not start, and arguments that refer to a variable nothing defines', () => {
    const folder = mkdtempSync(path.join(os.tmpdir(), 's3migrate-k8s-'));
    try {
      const job = path.join(folder, 'copy-job.yaml');
      copyFileSync(COPY_JOB, job);
      expect(() => jobCommand(job, { secrets })).toThrow(/ConfigMap s3migrate-config/);
      const { S3MIGRATE_TO: _unused, ...data } = configMap().data!;
      writeFileSync(path.join(folder, 'configmap.yaml'), stringify({ ...configMap(), data }));
      expect(() => jobCommand(job, { secrets })).toThrow(/undefined variables: S3MIGRATE_TO$/);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});

describe('Dockerfile', () => {
  const instructions = dockerInstructions();
  const stages = instructions.reduce<Array<typeof instructions>>((all, step) => {
    if (step.instruction === 'FROM') all.push([]);
    all.at(-1)?.push(step);
    return all;
  }, []);
  const final = stages.at(-1)!;

  it('is multi-stage on a supported Node.js (20, 22, 24) Debian slim image', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const version = /NODE_VERSION=(\d+)/.exec(instructions.find((step) => step.instruction === 'ARG')!.args)?.[1];
    expect(['20', '22', '24']).toContain(version);
    // Each stage starts from the Node.js image or from an earlier stage.
    const names: string[] = [];
    for (const stage of stages) {
      const [image, as, name] = stage[0]!.args.split(/\s+/);
      if (!names.includes(image!)) expect(image).toBe('node:${NODE_VERSION}-bookworm-slim');
      if (as?.toUpperCase() === 'AS') names.push(name!);
    }
  });

  it('compiles better-sqlite3 from source in a build stage and installs production dependencies only', () => {
    const build = stages.slice(0, -1).flat().map((step) => step.args).join('\n');
    expect(build).toMatch(/apt-get install .*python3.*make.*g\+\+/);
    expect(build).toMatch(/npm install --omit=dev/);
    expect(build).toMatch(/npm_config_build_from_source=true/);
    expect(build).toMatch(/npm rebuild better-sqlite3/);
    expect(final.map((step) => step.args).join('\n')).not.toMatch(/apt-get|g\+\+/);
  });

  it('runs bin/s3migrate.js as a non-root user, the one the Jobs expect', () => {
    const entrypoint = final.find((step) => step.instruction === 'ENTRYPOINT')!;
    expect(JSON.parse(entrypoint.args)).toEqual(['node', '/app/bin/s3migrate.js']);
    expect(final.map((step) => step.args)).toContain('bin ./bin');
    const user = final.filter((step) => step.instruction === 'USER').at(-1)!.args;
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    expect(Number(user.split(':')[0])).toBe(copyJob().spec!.template.spec!.securityContext!.runAsUser);
  });

  it('says there is no health check, and keeps .env and state files out of the build context', () => {
    expect(final.find((step) => step.instruction === 'HEALTHCHECK')?.args).toBe('NONE');
    const ignore = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').map((line) => line.trim());
    expect(ignore.filter((line) => line && !line.startsWith('#'))[0]).toBe('*'); // an allow-list
    for (const pattern of ['**/.env', '**/*.db']) expect(ignore).toContain(pattern);
    expect(ignore.filter((line) => line.startsWith('!') && /env|\.db/.test(line))).toEqual([]);
  });
});

describe('systemd units', () => {
  const copyUnit = path.join(SYSTEMD, 's3migrate-copy@.service');
  const catalogUnit = path.join(SYSTEMD, 's3migrate-catalog.service');

  it('restarts a worker on a fatal error, never for failed objects (3) or invalid usage (2)', () => {
    const unit = unitSettings(copyUnit);
    expect(unit.get('Restart')).toEqual(['on-failure']);
    expect(unit.get('RestartPreventExitStatus')!.join(' ').split(/\s+/)).toEqual(expect.arrayContaining(['3', '2']));
    expect(unit.get('SuccessExitStatus')!.join(' ').split(/\s+/)).toContain('130');
  });

  it('stops with SIGTERM and waits at least as long as the Kubernetes grace period', () => {
    const unit = unitSettings(copyUnit);
    expect(unit.get('KillSignal')).toEqual(['SIGTERM']);
    expect(seconds(unit.get('TimeoutStopSec')![0]!)).toBeGreaterThanOrEqual(copyJob().spec!.template.spec!.terminationGracePeriodSeconds!);
  });

  it('runs the same commands as the Jobs, credentials from an EnvironmentFile', () => {
    const copy = unitSettings(copyUnit);
    const catalog = unitSettings(catalogUnit);
    expect(copy.get('ExecStart')![0]).toMatch(
      /bin\/s3migrate\.js copy --to \$\{S3MIGRATE_TO\} --state \$\{S3MIGRATE_STATE_URL\} --migration \$\{S3MIGRATE_MIGRATION\}$/,
    );
    expect(catalog.get('ExecStart')![0]).toMatch(
      /bin\/s3migrate\.js catalog --from \$\{S3MIGRATE_FROM\} --state \$\{S3MIGRATE_STATE_URL\} --migration \$\{S3MIGRATE_MIGRATION\}$/,
    );
    for (const unit of [copy, catalog]) {
      expect(unit.get('EnvironmentFile')![0]).toBe('/etc/s3migrate/s3migrate.env');
      expect(unit.get('User')).toEqual(['s3migrate']);
    }
  });

  const analyze = spawnSync('systemd-analyze', ['--version']).status === 0;
  it.skipIf(!analyze)('passes systemd-analyze verify', () => {
    const folder = mkdtempSync(path.join(os.tmpdir(), 's3migrate-units-'));
    try {
      copyFileSync(copyUnit, path.join(folder, 's3migrate-copy@1.service'));
      copyFileSync(catalogUnit, path.join(folder, 's3migrate-catalog.service'));
      execFileSync('systemd-analyze', ['verify', '--man=no', 's3migrate-copy@1.service', 's3migrate-catalog.service'].map(
        (arg) => (arg.endsWith('.service') ? path.join(folder, arg) : arg),
      ), { stdio: 'pipe' });
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
