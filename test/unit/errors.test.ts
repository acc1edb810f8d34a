// classifyError on the error shapes the AWS SDK builds from Ceph RGW's answers, which carry an error
// code but an empty Message (the SDK then says "UnknownError"), and from HEAD answers, which have no body.
import { describe, expect, it } from 'vitest';
import { classifyError } from '../../src/s3/errors.js';

/** What the SDK throws for an S3 error answer. */
function sdkError(name: string, status: number, message: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status }, ...extra });
}

describe('classifyError', () => {
  it('describes an RGW error with an empty message by its code and HTTP status', () => {
    expect(classifyError(sdkError('AccessDenied', 403, 'UnknownError', { Code: 'AccessDenied' }))).toEqual({
      kind: 'auth',
      code: 'AccessDenied',
      status: 403,
      description: 'AccessDenied (HTTP 403)',
    });
    expect(classifyError(sdkError('NoSuchBucket', 404, 'UnknownError')).description).toBe('NoSuchBucket (HTTP 404)');
    expect(classifyError(sdkError('MissingContentLength', 411, 'UnknownError')).description).toBe(
      'MissingContentLength (HTTP 411)',
    );
  });

  it('keeps a useful server message', () => {
    expect(classifyError(sdkError('AccessDenied', 403, 'Access Denied')).description).toBe('AccessDenied (HTTP 403): Access Denied');
  });

  it('names a bodiless answer (HEAD) by its HTTP status', () => {
    expect(classifyError(sdkError('Unknown', 403, 'UnknownError'))).toMatchObject({
      kind: 'auth',
      code: 'Forbidden',
      description: 'Forbidden (HTTP 403)',
    });
    expect(classifyError(sdkError('NotFound', 404, 'UnknownError'))).toMatchObject({ kind: 'not-found', code: 'NotFound' });
    expect(classifyError(sdkError('Unknown', 503, 'Unknown'))).toMatchObject({
      kind: 'throttled',
      description: 'ServiceUnavailable (HTTP 503)',
    });
    expect(classifyError(sdkError('Unknown', 418, 'UnknownError')).description).toBe('Unknown (HTTP 418)');
  });

  it('leaves network errors alone', () => {
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    expect(classifyError(reset)).toMatchObject({ kind: 'retryable', code: 'ECONNRESET', description: 'ECONNRESET: socket hang up' });
  });
});
