import { describeEndpoint, type EndpointConfig, type Env } from '../config/endpoint-config.js';
import { describeLocation, formatS3Url, parseS3Url, sameLocation } from '../config/s3-url.js';
import { UsageError } from '../errors.js';
import type { StateStore } from '../state/store.js';
import type { EndpointLocation } from '../state/types.js';
import { endpointConfigFromFlags } from './options.js';

/** Both sides of a migration as a state file and the flags/environment describe them. */
export interface Migration {
  source: EndpointLocation;
  dest: EndpointLocation;
  sourceConfig: EndpointConfig;
  destConfig: EndpointConfig;
}

function overlaps(a: EndpointLocation, b: EndpointLocation): boolean {
  return a.endpoint === b.endpoint && a.bucket === b.bucket && (a.prefix.startsWith(b.prefix) || b.prefix.startsWith(a.prefix));
}

/**
 * Resolves source (from the catalog) and destination (from --to, or from the state file when copy ran
 * before) and refuses every combination that would copy the wrong thing: a --from or source endpoint
 * that is not the catalog's, a destination that overlaps the source, a destination other than the one
 * the state file has been copying to.
 */
export async function resolveMigration(
  store: StateStore,
  env: Env,
  flags: Record<string, string | boolean | undefined>,
): Promise<Migration> {
  const raw = flags as Record<string, string | undefined>;
  const sourceConfig = endpointConfigFromFlags('source', env, raw);
  const destConfig = endpointConfigFromFlags('dest', env, raw);
  const source = await store.getSource();
  if (!source) {
    throw new UsageError(`${store.location} has no catalog yet. Run \`s3migrate catalog --from s3://BUCKET\` first.`);
  }
  if (typeof flags.from === 'string') {
    const from = parseS3Url(flags.from, '--from');
    if (from.bucket !== source.bucket || from.prefix !== source.prefix) {
      throw new UsageError(
        `--from ${formatS3Url(from)} does not match the catalog in ${store.location} ` +
          `(${formatS3Url(source)}). Drop --from, or use the state file of that source.`,
      );
    }
  }
  if (describeEndpoint(sourceConfig) !== source.endpoint) {
    throw new UsageError(
      `The catalog in ${store.location} was listed from ${describeLocation(source)}, but the source endpoint is now ` +
        `${describeEndpoint(sourceConfig)}. Set SOURCE_ENDPOINT (or --source-endpoint) as it was for catalog.`,
    );
  }

  const recorded = await store.getDestination();
  let dest: EndpointLocation;
  if (typeof flags.to === 'string') {
    dest = { endpoint: describeEndpoint(destConfig), ...parseS3Url(flags.to, '--to') };
  } else if (recorded) {
    dest = recorded;
  } else {
    throw new UsageError(`${store.location} has not been copied anywhere yet: pass --to s3://BUCKET[/PREFIX].`);
  }
  if (overlaps(source, dest)) {
    throw new UsageError(
      `--to ${formatS3Url(dest)} overlaps the source ${formatS3Url(source)} on the same endpoint; ` +
        `copying a bucket onto itself would overwrite or re-copy its own objects. Choose another bucket or prefix.`,
    );
  }
  if (recorded && !sameLocation(recorded, dest)) {
    throw new UsageError(
      `${store.location} has been copying to ${describeLocation(recorded)}, not ${describeLocation(dest)}. ` +
        `Its done marks are for that destination: for another one, catalog again into a new --state file.`,
    );
  }
  return { source, dest, sourceConfig, destConfig };
}
