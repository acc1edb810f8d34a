/**
 * Classifies S3 and network errors by error code and HTTP status, never by message text: some servers
 * (Ceph RGW) send empty messages, for which the SDK says "UnknownError".
 */
export type ErrorClass =
  | 'throttled' // slow down, then retry
  | 'retryable' // transient: 5xx, resets, timeouts, cut bodies
  | 'auth' // credentials or permissions: retrying will not help
  | 'no-such-bucket' // dooms every object of the run
  | 'not-found' // this object is not there
  | 'aborted' // we cancelled it
  | 'fatal'; // anything else: do not retry

export interface ClassifiedError {
  kind: ErrorClass;
  code: string;
  status?: number;
  /** A one-line description for the user: code, HTTP status and the server's message when it has one. */
  description: string;
}

const THROTTLE_CODES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequests',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'ProvisionedThroughputExceededException',
  'BandwidthLimitExceeded',
  'EC2ThrottledException',
]);

const TRANSIENT_CODES = new Set([
  'InternalError',
  'ServiceUnavailable',
  'RequestTimeout',
  'RequestTimeoutException',
  'PriorRequestNotComplete',
  'TimeoutError',
  'RequestTimeTooSkewed',
  'ExpiredRequest',
  'IncompleteBody',
  'BadDigest',
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
  'TruncatedBody',
  'IntegrityMismatch',
]);

const AUTH_CODES = new Set([
  'AccessDenied',
  'AllAccessDisabled',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'CredentialsProviderError',
  'AccountProblem',
  'Forbidden',
]);

interface ErrorShape {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { statusCode?: number };
  cause?: unknown;
}

// What the SDK calls an error whose answer carried no code (a HEAD request's answer has no body), and the
// name we give it instead, from the HTTP status: "Forbidden (HTTP 403)" says more than "Unknown (HTTP 403)".
const NO_CODE = new Set(['Unknown', 'UnknownError', 'Error']);
const STATUS_NAMES: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  411: 'MissingContentLength',
  412: 'PreconditionFailed',
  501: 'NotImplemented',
  503: 'ServiceUnavailable',
};

function codeOf(error: ErrorShape): string {
  // Network errors carry a Node errno code; SDK service errors carry the S3 code as name (and Code).
  if (typeof error.code === 'string' && error.code !== '') return error.code;
  if (typeof error.Code === 'string' && error.Code !== '') return error.Code;
  if (typeof error.name === 'string' && error.name !== '' && error.name !== 'Error') return error.name;
  return 'Error';
}

export function classifyError(raw: unknown): ClassifiedError {
  const error = (raw ?? {}) as ErrorShape;
  const status = error.$metadata?.httpStatusCode ?? error.$response?.statusCode;
  const rawCode = codeOf(error);
  const code = NO_CODE.has(rawCode) && status !== undefined ? (STATUS_NAMES[status] ?? rawCode) : rawCode;
  const kind = kindOf(code, status, error);
  const message = typeof error.message === 'string' ? error.message.trim() : '';
  const useful = message !== '' && !NO_CODE.has(message) && message !== code && !/^\d+$/.test(message);
  const description = `${code}${status ? ` (HTTP ${status})` : ''}${useful ? `: ${message}` : ''}`;
  return { kind, code, status, description };
}

function kindOf(code: string, status: number | undefined, error: ErrorShape): ErrorClass {
  if (code === 'AbortError' || error.name === 'AbortError') return 'aborted';
  if (THROTTLE_CODES.has(code) || status === 429 || status === 503) return 'throttled';
  if (code === 'NoSuchBucket') return 'no-such-bucket';
  if (AUTH_CODES.has(code) || status === 401 || status === 403) return 'auth';
  if (code === 'NoSuchKey' || code === 'NotFound' || status === 404) return 'not-found';
  if (TRANSIENT_CODES.has(code) || (status !== undefined && status >= 500)) return 'retryable';
  // Errors thrown from deep inside the HTTP stack sometimes keep the errno on their cause.
  if (error.cause && typeof error.cause === 'object') {
    const inner = codeOf(error.cause as ErrorShape);
    if (TRANSIENT_CODES.has(inner)) return 'retryable';
  }
  return 'fatal';
}

export function isRetryable(kind: ErrorClass): boolean {
  return kind === 'throttled' || kind === 'retryable';
}
