import { UsageError } from '../errors.js';

export type Side = 'source' | 'dest';
export type ChecksumMode = 'when-required' | 'when-supported';
export type Env = Record<string, string | undefined>;

export interface StaticCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Everything needed to build one side's S3 client. Holds secrets: never print or persist it whole. */
export interface EndpointConfig {
  side: Side;
  /** Custom endpoint URL, or undefined for AWS itself. */
  endpoint?: string;
  /** undefined only when a profile is used and no region was given: the SDK reads the profile's. */
  region?: string;
  forcePathStyle: boolean;
  checksumMode: ChecksumMode;
  credentials?: StaticCredentials;
  profile?: string;
  /** Where the credentials came from, for messages (a variable or profile name, never a value). */
  credentialSource: string;
  /**
   * False: every request goes through the AWS SDK's full middleware stack, GetObject, PutObject and
   * UploadPart included (S3MIGRATE_LEAN_PATH=0). Otherwise those three take the lean path (src/s3/lean-path.ts).
   */
  leanPath?: boolean;
  /**
   * The lean path's HTTP client (S3MIGRATE_HTTP_CLIENT): its own HTTP/1.1 client (`http1`, lean-http.ts) by
   * default; `node-http` for node:http; `undici` needs that package.
   */
  httpClient?: 'http1' | 'node-http' | 'undici';
  /**
   * This side's SSE-C key (SOURCE_SSE_C_KEY / DEST_SSE_C_KEY), base64 of exactly 32 bytes: sent with every
   * request that reads, writes or heads an object of this side. A secret: never printed nor stored.
   */
  sseCustomerKey?: string;
}

/** Per-side overrides from the command line (`--source-endpoint`, ...). */
export interface SideFlags {
  endpoint?: string;
  region?: string;
  profile?: string;
  checksum?: string;
}

const PREFIX: Record<Side, string> = { source: 'SOURCE', dest: 'DEST' };
const FLAG: Record<Side, string> = { source: '--source', dest: '--dest' };

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function parseBoolean(name: string, value: string): boolean {
  const normalized = value.toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(normalized)) return true;
  if (['0', 'false', 'no', 'off'].includes(normalized)) return false;
  throw new UsageError(`${name} must be true or false, got "${value}"`);
}

function parseEndpoint(name: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`${name} must be a URL such as https://s3.example.com, got "${value}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`${name} must start with http:// or https://, got "${value}"`);
  }
  return value.replace(/\/+$/, '');
}

export function parseChecksumMode(name: string, value: string): ChecksumMode {
  const normalized = value.toLowerCase().replace(/_/g, '-');
  if (normalized === 'when-required' || normalized === 'when-supported') return normalized;
  throw new UsageError(`${name} must be when-required or when-supported, got "${value}"`);
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * An SSE-C key from `name`: the base64 of exactly 32 bytes (AES-256), returned in canonical base64. The
 * message of a bad value names the variable and says what is wrong, never the value itself.
 */
export function parseSseCustomerKey(name: string, value: string): string {
  const text = value.trim();
  if (!BASE64.test(text)) {
    throw new UsageError(`${name} must be a base64-encoded 32-byte key (e.g. \`openssl rand -base64 32\`); its value is not base64 (not shown)`);
  }
  const key = Buffer.from(text, 'base64');
  if (key.length !== 32) {
    throw new UsageError(`${name} must be a base64-encoded 32-byte key (e.g. \`openssl rand -base64 32\`); its value decodes to ${key.length} bytes (not shown)`);
  }
  return key.toString('base64');
}

/** Reads a key pair from `<prefix>AWS_*`; both or neither must be set. */
function keyPair(env: Env, prefix: string): StaticCredentials | undefined {
  const idName = `${prefix}AWS_ACCESS_KEY_ID`;
  const secretName = `${prefix}AWS_SECRET_ACCESS_KEY`;
  const accessKeyId = nonEmpty(env[idName]);
  const secretAccessKey = nonEmpty(env[secretName]);
  if (accessKeyId === undefined && secretAccessKey === undefined) return undefined;
  if (accessKeyId === undefined) throw new UsageError(`${secretName} is set but ${idName} is not: set both`);
  if (secretAccessKey === undefined) throw new UsageError(`${idName} is set but ${secretName} is not: set both`);
  const sessionToken = nonEmpty(env[`${prefix}AWS_SESSION_TOKEN`]);
  return sessionToken ? { accessKeyId, secretAccessKey, sessionToken } : { accessKeyId, secretAccessKey };
}

/**
 * Resolves one side's endpoint configuration. Precedence, most specific first:
 * flag > SOURCE_/DEST_ variable > standard AWS_ variable > SDK default (credential chain).
 */
export function resolveEndpointConfig(side: Side, env: Env, flags: SideFlags = {}): EndpointConfig {
  const p = PREFIX[side];
  const f = FLAG[side];

  const endpointSetting = nonEmpty(flags.endpoint)
    ? { name: `${f}-endpoint`, value: flags.endpoint!.trim() }
    : [`${p}_ENDPOINT`, 'AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL']
        .map((name) => ({ name, value: nonEmpty(env[name]) }))
        .find((s) => s.value !== undefined);
  const endpoint = endpointSetting?.value ? parseEndpoint(endpointSetting.name, endpointSetting.value) : undefined;

  const pathStyleVar = nonEmpty(env[`${p}_FORCE_PATH_STYLE`]);
  // Custom endpoints (MinIO, Ceph, s3rver, ...) rarely have wildcard DNS for virtual-hosted buckets.
  const forcePathStyle =
    pathStyleVar !== undefined ? parseBoolean(`${p}_FORCE_PATH_STYLE`, pathStyleVar) : endpoint !== undefined;

  const checksumSetting = nonEmpty(flags.checksum)
    ? { name: `${f}-checksum`, value: flags.checksum!.trim() }
    : { name: `${p}_CHECKSUM_MODE`, value: nonEmpty(env[`${p}_CHECKSUM_MODE`]) };
  // The SDK's default streaming checksums (aws-chunked) corrupt or get refused by many S3-compatible servers.
  const checksumMode = checksumSetting.value
    ? parseChecksumMode(checksumSetting.name, checksumSetting.value)
    : endpoint !== undefined
      ? 'when-required'
      : 'when-supported';

  const flagProfile = nonEmpty(flags.profile);
  const sideKeys = keyPair(env, `${p}_`);
  const sideProfile = nonEmpty(env[`${p}_AWS_PROFILE`]);
  if (sideKeys && sideProfile && !flagProfile) {
    throw new UsageError(
      `${p}_AWS_PROFILE and ${p}_AWS_ACCESS_KEY_ID are both set: keep one of them for the ${side} side`,
    );
  }

  let credentials: StaticCredentials | undefined;
  let profile: string | undefined;
  let credentialSource: string;
  if (flagProfile) {
    profile = flagProfile;
    credentialSource = `profile "${flagProfile}" (${f}-profile)`;
  } else if (sideKeys) {
    credentials = sideKeys;
    credentialSource = `${p}_AWS_ACCESS_KEY_ID`;
  } else if (sideProfile) {
    profile = sideProfile;
    credentialSource = `profile "${sideProfile}" (${p}_AWS_PROFILE)`;
  } else {
    const sharedKeys = keyPair(env, '');
    const sharedProfile = nonEmpty(env.AWS_PROFILE);
    if (sharedKeys) {
      credentials = sharedKeys;
      credentialSource = 'AWS_ACCESS_KEY_ID';
    } else if (sharedProfile) {
      profile = sharedProfile;
      credentialSource = `profile "${sharedProfile}" (AWS_PROFILE)`;
    } else {
      credentialSource = 'the AWS SDK default credential chain';
    }
  }

  const region =
    nonEmpty(flags.region) ??
    nonEmpty(env[`${p}_AWS_REGION`]) ??
    nonEmpty(env.AWS_REGION) ??
    nonEmpty(env.AWS_DEFAULT_REGION) ??
    (profile ? undefined : 'us-east-1');

  const leanSetting = nonEmpty(env.S3MIGRATE_LEAN_PATH);
  const leanPath = leanSetting === undefined || parseBoolean('S3MIGRATE_LEAN_PATH', leanSetting) ? undefined : false;

  const httpClientSetting = nonEmpty(env.S3MIGRATE_HTTP_CLIENT);
  if (httpClientSetting !== undefined && !['http1', 'node-http', 'undici'].includes(httpClientSetting)) {
    throw new UsageError(`S3MIGRATE_HTTP_CLIENT must be http1, node-http or undici, got "${httpClientSetting}"`);
  }
  const httpClient = httpClientSetting as EndpointConfig['httpClient'];

  // No fallback to an unprefixed variable: an SSE-C key belongs to the objects of one side.
  const sseSetting = nonEmpty(env[`${p}_SSE_C_KEY`]);
  const sseCustomerKey = sseSetting === undefined ? undefined : parseSseCustomerKey(`${p}_SSE_C_KEY`, sseSetting);

  return {
    side,
    endpoint,
    region,
    forcePathStyle,
    checksumMode,
    credentials,
    profile,
    credentialSource,
    leanPath,
    httpClient,
    ...(sseCustomerKey === undefined ? {} : { sseCustomerKey }),
  };
}

/**
 * A label that identifies where a side points, safe to print and to store (no secrets). On AWS a bucket
 * name is unique within its partition whatever the region, so the label is the partition, not the region:
 * the same bucket reached with another (or no) region setting is the same place, and a copy onto the
 * source bucket is recognised as such.
 */
export function describeEndpoint(config: EndpointConfig): string {
  if (config.endpoint !== undefined) return config.endpoint;
  const region = config.region ?? '';
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  if (region.startsWith('us-isob-')) return 'aws-iso-b';
  if (region.startsWith('us-iso-')) return 'aws-iso';
  return 'aws';
}
