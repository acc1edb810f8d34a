import { describe, expect, it } from 'vitest';
import { describeEndpoint, resolveEndpointConfig, type Env } from '../../src/config/endpoint-config.js';
import { UsageError } from '../../src/errors.js';

const KEYS = (prefix: string, id: string, secret = `${id}-secret`): Env => ({
  [`${prefix}AWS_ACCESS_KEY_ID`]: id,
  [`${prefix}AWS_SECRET_ACCESS_KEY`]: secret,
});

function usageError(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return error as UsageError;
  }
  throw new Error('expected a UsageError, nothing was thrown');
}

describe('resolveEndpointConfig: endpoint', () => {
  const all: Env = {
    SOURCE_ENDPOINT: 'http://side.example:9000',
    AWS_ENDPOINT_URL_S3: 'http://s3-specific.example',
    AWS_ENDPOINT_URL: 'http://shared.example',
  };

  it('flag > SOURCE_ENDPOINT > AWS_ENDPOINT_URL_S3 > AWS_ENDPOINT_URL > none', () => {
    expect(resolveEndpointConfig('source', all, { endpoint: 'http://flag.example' }).endpoint).toBe('http://flag.example');
    expect(resolveEndpointConfig('source', all).endpoint).toBe('http://side.example:9000');
    expect(resolveEndpointConfig('source', { ...all, SOURCE_ENDPOINT: undefined }).endpoint).toBe('http://s3-specific.example');
    expect(resolveEndpointConfig('source', { AWS_ENDPOINT_URL: 'http://shared.example' }).endpoint).toBe('http://shared.example');
    expect(resolveEndpointConfig('source', {}).endpoint).toBeUndefined();
  });

  it('an empty variable counts as unset', () => {
    expect(resolveEndpointConfig('source', { SOURCE_ENDPOINT: '  ', AWS_ENDPOINT_URL: 'http://shared.example' }).endpoint).toBe(
      'http://shared.example',
    );
    expect(resolveEndpointConfig('source', all, { endpoint: '' }).endpoint).toBe('http://side.example:9000');
  });

  it('each side reads only its own variables', () => {
    const env: Env = { SOURCE_ENDPOINT: 'http://src.example', DEST_ENDPOINT: 'http://dst.example', ...KEYS('SOURCE_', 'SRCKEY') };
    expect(resolveEndpointConfig('dest', env).endpoint).toBe('http://dst.example');
    expect(resolveEndpointConfig('dest', env).credentials).toBeUndefined();
    expect(resolveEndpointConfig('dest', { SOURCE_ENDPOINT: 'http://src.example' }).endpoint).toBeUndefined();
    expect(resolveEndpointConfig('source', { DEST_ENDPOINT: 'http://dst.example' }).endpoint).toBeUndefined();
  });

  it('drops a trailing slash and refuses what is not an http(s) URL', () => {
    expect(resolveEndpointConfig('source', { SOURCE_ENDPOINT: 'https://s3.example.com/' }).endpoint).toBe('https://s3.example.com');
    expect(usageError(() => resolveEndpointConfig('source', { SOURCE_ENDPOINT: 's3.example.com' })).message).toMatch(
      /SOURCE_ENDPOINT must be a URL/,
    );
    expect(usageError(() => resolveEndpointConfig('dest', {}, { endpoint: 'ftp://x.example' })).message).toMatch(
      /--dest-endpoint must start with http:\/\/ or https:\/\//,
    );
  });
});

describe('resolveEndpointConfig: path style and checksums', () => {
  it('path style is on with a custom endpoint, off for AWS, and FORCE_PATH_STYLE decides when set', () => {
    expect(resolveEndpointConfig('source', { SOURCE_ENDPOINT: 'http://minio:9000' }).forcePathStyle).toBe(true);
    expect(resolveEndpointConfig('source', {}).forcePathStyle).toBe(false);
    expect(
      resolveEndpointConfig('source', { SOURCE_ENDPOINT: 'http://minio:9000', SOURCE_FORCE_PATH_STYLE: 'false' }).forcePathStyle,
    ).toBe(false);
    expect(resolveEndpointConfig('source', { SOURCE_FORCE_PATH_STYLE: 'true' }).forcePathStyle).toBe(true);
    expect(resolveEndpointConfig('dest', { DEST_ENDPOINT: 'http://x', DEST_FORCE_PATH_STYLE: '0' }).forcePathStyle).toBe(false);
    // The other side's setting does not apply.
    expect(resolveEndpointConfig('dest', { DEST_ENDPOINT: 'http://x', SOURCE_FORCE_PATH_STYLE: 'false' }).forcePathStyle).toBe(true);
    expect(usageError(() => resolveEndpointConfig('source', { SOURCE_FORCE_PATH_STYLE: 'maybe' })).message).toMatch(
      /SOURCE_FORCE_PATH_STYLE must be true or false, got "maybe"/,
    );
  });

  it('checksums: when-required with a custom endpoint, when-supported for AWS, flag > variable', () => {
    expect(resolveEndpointConfig('source', { SOURCE_ENDPOINT: 'http://minio:9000' }).checksumMode).toBe('when-required');
    expect(resolveEndpointConfig('source', {}).checksumMode).toBe('when-supported');
    expect(resolveEndpointConfig('source', { SOURCE_CHECKSUM_MODE: 'when_required' }).checksumMode).toBe('when-required');
    expect(
      resolveEndpointConfig('source', { SOURCE_ENDPOINT: 'http://m', SOURCE_CHECKSUM_MODE: 'WHEN_SUPPORTED' }).checksumMode,
    ).toBe('when-supported');
    expect(
      resolveEndpointConfig('source', { SOURCE_CHECKSUM_MODE: 'when-supported' }, { checksum: 'when-required' }).checksumMode,
    ).toBe('when-required');
    expect(usageError(() => resolveEndpointConfig('dest', {}, { checksum: 'sometimes' })).message).toMatch(
      /--dest-checksum must be when-required or when-supported/,
    );
  });
});

describe('resolveEndpointConfig: credentials and region', () => {
  it('SOURCE_ keys > AWS_ keys > default chain; the source names a variable, never a value', () => {
    const both = { ...KEYS('SOURCE_', 'SIDE'), ...KEYS('', 'SHARED') };
    const side = resolveEndpointConfig('source', both);
    expect(side.credentials).toEqual({ accessKeyId: 'SIDE', secretAccessKey: 'SIDE-secret' });
    expect(side.credentialSource).toBe('SOURCE_AWS_ACCESS_KEY_ID');

    const shared = resolveEndpointConfig('dest', both);
    expect(shared.credentials).toEqual({ accessKeyId: 'SHARED', secretAccessKey: 'SHARED-secret' });
    expect(shared.credentialSource).toBe('AWS_ACCESS_KEY_ID');

    const chain = resolveEndpointConfig('source', {});
    expect(chain.credentials).toBeUndefined();
    expect(chain.profile).toBeUndefined();
    expect(chain.credentialSource).toMatch(/default credential chain/);

    for (const config of [side, shared, chain]) expect(config.credentialSource).not.toMatch(/secret/i);
  });

  it('carries the session token of its own side', () => {
    const config = resolveEndpointConfig('source', { ...KEYS('SOURCE_', 'ID'), SOURCE_AWS_SESSION_TOKEN: 'TOKEN', AWS_SESSION_TOKEN: 'OTHER' });
    expect(config.credentials).toEqual({ accessKeyId: 'ID', secretAccessKey: 'ID-secret', sessionToken: 'TOKEN' });
  });

  it('profiles: --source-profile > SOURCE_ keys > SOURCE_AWS_PROFILE > AWS_ keys > AWS_PROFILE', () => {
    const flag = resolveEndpointConfig('source', { ...KEYS('SOURCE_', 'ID'), SOURCE_AWS_PROFILE: 'p' }, { profile: 'cli' });
    expect(flag).toMatchObject({ profile: 'cli', credentials: undefined });
    expect(flag.credentialSource).toContain('--source-profile');

    expect(resolveEndpointConfig('source', { SOURCE_AWS_PROFILE: 'side', ...KEYS('', 'SHARED') })).toMatchObject({
      profile: 'side',
      credentials: undefined,
    });
    expect(resolveEndpointConfig('source', { AWS_PROFILE: 'shared', ...KEYS('', 'SHARED') })).toMatchObject({
      profile: undefined,
      credentials: { accessKeyId: 'SHARED' },
    });
    expect(resolveEndpointConfig('dest', { AWS_PROFILE: 'shared' })).toMatchObject({ profile: 'shared', credentials: undefined });
  });

  it('contradictions and half-set key pairs are usage errors naming the variables', () => {
    expect(usageError(() => resolveEndpointConfig('source', { SOURCE_AWS_ACCESS_KEY_ID: 'ID' })).message).toBe(
      'SOURCE_AWS_ACCESS_KEY_ID is set but SOURCE_AWS_SECRET_ACCESS_KEY is not: set both',
    );
    expect(usageError(() => resolveEndpointConfig('dest', { DEST_AWS_SECRET_ACCESS_KEY: 'S' })).message).toMatch(
      /DEST_AWS_SECRET_ACCESS_KEY is set but DEST_AWS_ACCESS_KEY_ID is not/,
    );
    expect(usageError(() => resolveEndpointConfig('source', { AWS_ACCESS_KEY_ID: 'ID' })).message).toMatch(
      /AWS_SECRET_ACCESS_KEY/,
    );
    expect(
      usageError(() => resolveEndpointConfig('source', { ...KEYS('SOURCE_', 'ID'), SOURCE_AWS_PROFILE: 'p' })).message,
    ).toMatch(/SOURCE_AWS_PROFILE and SOURCE_AWS_ACCESS_KEY_ID are both set/);
  });

  it('region: flag > SOURCE_AWS_REGION > AWS_REGION > AWS_DEFAULT_REGION > us-east-1 (or the profile\'s)', () => {
    const env: Env = { SOURCE_AWS_REGION: 'eu-west-1', AWS_REGION: 'us-west-2', AWS_DEFAULT_REGION: 'ap-south-1' };
    expect(resolveEndpointConfig('source', env, { region: 'eu-central-1' }).region).toBe('eu-central-1');
    expect(resolveEndpointConfig('source', env).region).toBe('eu-west-1');
    expect(resolveEndpointConfig('dest', env).region).toBe('us-west-2');
    expect(resolveEndpointConfig('dest', { AWS_DEFAULT_REGION: 'ap-south-1' }).region).toBe('ap-south-1');
    expect(resolveEndpointConfig('dest', {}).region).toBe('us-east-1');
    expect(resolveEndpointConfig('dest', { DEST_AWS_PROFILE: 'p' }).region).toBeUndefined();
  });

  it('describeEndpoint names where a side points, without secrets', () => {
    const custom = resolveEndpointConfig('source', { SOURCE_ENDPOINT: 'http://minio:9000', ...KEYS('SOURCE_', 'ID', 'TOPSECRET') });
    expect(describeEndpoint(custom)).toBe('http://minio:9000');
    expect(describeEndpoint(custom)).not.toContain('TOPSECRET');
  });

  it('describeEndpoint: on AWS the same bucket is the same place whatever the region setting', () => {
    // It is the identity stored with a catalog and compared by copy (same source? dest overlapping the
    // source?). A region in it made a catalog listed with AWS_REGION=eu-west-1 "another source" for a copy
    // run without it, and let `--to` the source bucket through when the two sides' regions differed.
    const labels = [
      resolveEndpointConfig('source', { SOURCE_AWS_REGION: 'eu-west-1' }),
      resolveEndpointConfig('dest', {}),
      resolveEndpointConfig('source', { AWS_PROFILE: 'p' }),
      resolveEndpointConfig('dest', { DEST_AWS_REGION: 'ap-southeast-2' }),
    ].map(describeEndpoint);
    expect(new Set(labels)).toEqual(new Set(['aws']));
    // Other partitions have their own bucket namespaces.
    expect(describeEndpoint(resolveEndpointConfig('source', { AWS_REGION: 'cn-north-1' }))).toBe('aws-cn');
    expect(describeEndpoint(resolveEndpointConfig('source', { AWS_REGION: 'us-gov-west-1' }))).toBe('aws-us-gov');
    // A custom endpoint is its URL, whatever the region.
    expect(describeEndpoint(resolveEndpointConfig('source', { SOURCE_ENDPOINT: 'http://m:9000/', AWS_REGION: 'x' }))).toBe(
      'http://m:9000',
    );
  });
});

describe('resolveEndpointConfig: SSE-C keys', () => {
  const key = Buffer.alloc(32, 0xa5);

  it('each side its own variable, kept as canonical base64; no fallback to an unprefixed one', () => {
    const env: Env = { SOURCE_SSE_C_KEY: ` ${key.toString('base64')}\n`, SSE_C_KEY: key.toString('base64') };
    expect(resolveEndpointConfig('source', env).sseCustomerKey).toBe(key.toString('base64'));
    expect(resolveEndpointConfig('dest', env).sseCustomerKey).toBeUndefined();
    expect('sseCustomerKey' in resolveEndpointConfig('dest', {})).toBe(false);
  });

  it('anything but the base64 of 32 bytes is a usage error naming the variable, never its value', () => {
    const bad = ['not base64 at all', key.subarray(0, 16).toString('base64'), Buffer.alloc(33).toString('base64'), key.toString('hex'), `${key.toString('base64')}=`];
    for (const value of bad) {
      const error = usageError(() => resolveEndpointConfig('dest', { DEST_SSE_C_KEY: value }));
      expect(error.message).toMatch(/^DEST_SSE_C_KEY must be a base64-encoded 32-byte key/);
      expect(error.message).not.toContain(value);
    }
  });
});
