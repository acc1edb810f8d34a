import http from 'node:http';
import https from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import type { EndpointConfig } from '../config/endpoint-config.js';

export interface ClientOptions {
  /** Requests this client may have in flight at once; the HTTP agent gets that many sockets. */
  maxSockets: number;
  /** SDK-level attempts per request (object-level retries are the engine's). */
  maxAttempts?: number;
}

const SILENT_LOGGER = {
  trace: (): void => undefined,
  debug: (): void => undefined,
  info: (): void => undefined,
  warn: (): void => undefined,
  error: (): void => undefined,
};

/**
 * Builds one side's S3 client. Each side gets its own client, agent and credentials: nothing is shared,
 * so a migration between two accounts or two providers never mixes them up.
 */
export function createS3Client(config: EndpointConfig, options: ClientOptions): S3Client {
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets, maxFreeSockets: options.maxSockets };
  const checksum = config.checksumMode === 'when-required' ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED';
  return new S3Client({
    endpoint: config.endpoint,
    region: config.region,
    forcePathStyle: config.forcePathStyle,
    credentials: config.credentials,
    profile: config.profile,
    followRegionRedirects: true,
    requestChecksumCalculation: checksum,
    responseChecksumValidation: checksum,
    maxAttempts: options.maxAttempts ?? 3,
    // Silent, and not the SDK's NoOpLogger: with that one the SDK writes some warnings to the console
    // (e.g. for a streamed upload it will not retry itself; the engine retries those).
    logger: SILENT_LOGGER,
    requestHandler: {
      httpAgent: new http.Agent(agentOptions),
      httpsAgent: new https.Agent(agentOptions),
      connectionTimeout: 10_000,
      // An idle socket for this long means a stalled transfer: fail it so the object is retried.
      socketTimeout: 120_000,
    },
  });
}
