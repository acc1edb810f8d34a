// A fault-injecting reverse proxy for tests, built on request-proxy.ts's hooks: in front of a real S3
// endpoint on 127.0.0.1, it answers a share of requests with 503 SlowDown or 500 InternalError (S3 XML
// error bodies), resets the connection before answering, cuts an answer's body midway, trickles it
// slowly, or adds latency. Rules are per operation (or per group of operations) and can be changed
// while a run goes on. Every draw comes from one seeded PRNG (no Math.random): the same seed and the
// same order of requests give the same faults. (Concurrent clients may order their requests
// differently from run to run; the rates hold whatever the order.)
import http from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import {
  startRequestProxy,
  type LogEntry,
  type ProxyDecision,
  type RequestInfo,
  type RequestProxy,
  type S3Op,
} from './request-proxy.js';

/** Groups of operations a rule can name; a rule for an exact S3Op wins over its group's, which wins over '*'. */
export type FaultGroup = 'GET' | 'PUT' | 'HEAD' | 'LIST' | 'MULTIPART' | '*';
export type FaultTarget = FaultGroup | S3Op;

export interface FaultRule {
  /** Share (0..1) of requests answered 503 SlowDown. */
  slowDown?: number;
  /** Share answered 500 InternalError. */
  internalError?: number;
  /** Share whose connection is destroyed before any answer. */
  reset?: number;
  /** Share of successful answers whose body is cut midway (the connection is destroyed after 10-90 % of it). */
  cutBody?: number;
  /** Share of successful answers whose body is trickled at `trickleBytesPerSecond`. */
  trickle?: number;
  trickleBytesPerSecond?: number;
  /** Latency added before forwarding, to a `latencyRate` share of requests (default all). */
  latencyMs?: number;
  latencyRate?: number;
}

export type FaultKind = 'slowDown' | 'internalError' | 'reset' | 'cutBody' | 'trickle' | 'latency';

export interface FaultProxy {
  endpoint: string;
  /** Sets (replaces) the rule for an operation or group; `{}` clears it. Takes effect for the next request. */
  setRule(target: FaultTarget, rule: FaultRule): void;
  clearRules(): void;
  /** How many times each fault was injected, per operation. */
  injected(): Array<{ op: S3Op; fault: FaultKind }>;
  injectedCount(fault: FaultKind, op?: S3Op): number;
  counts(): Record<string, number>;
  log(): LogEntry[];
  reset(): void;
  stop(): Promise<void>;
  /** The underlying request proxy (its log holds every request, injected failures included). */
  proxy: RequestProxy;
}

/** mulberry32: a tiny, well-distributed 32-bit PRNG. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function groupOf(op: S3Op): FaultGroup | undefined {
  switch (op) {
    case 'GetObject':
      return 'GET';
    case 'PutObject':
    case 'CopyObject':
      return 'PUT';
    case 'HeadObject':
    case 'HeadBucket':
      return 'HEAD';
    case 'ListObjectsV2':
    case 'ListObjects':
    case 'ListMultipartUploads':
      return 'LIST';
    case 'CreateMultipartUpload':
    case 'UploadPart':
    case 'UploadPartCopy':
    case 'CompleteMultipartUpload':
    case 'AbortMultipartUpload':
      return 'MULTIPART';
    default:
      return undefined;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Passes `limit` bytes, then fails: the proxy destroys the client's connection mid-body. */
class CutBody extends Transform {
  constructor(private left: number) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (chunk.length < this.left) {
      this.left -= chunk.length;
      return callback(null, chunk);
    }
    this.push(chunk.subarray(0, this.left));
    this.left = 0;
    // Give the piece a moment to reach the socket, then drop the connection.
    setTimeout(() => this.destroy(new Error('fault-proxy: body cut')), 10);
  }
}

/** Forwards the body in small slices, `bytesPerSecond` at most. */
class TrickleBody extends Transform {
  constructor(private readonly bytesPerSecond: number) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const slice = Math.max(1, Math.floor(this.bytesPerSecond / 20)); // 20 slices a second
    void (async () => {
      for (let offset = 0; offset < chunk.length && !this.destroyed; offset += slice) {
        this.push(chunk.subarray(offset, offset + slice));
        await sleep((Math.min(slice, chunk.length - offset) / this.bytesPerSecond) * 1000);
      }
      callback();
    })();
  }
}

export async function startFaultProxy(targetEndpoint: string, options: { seed: number }): Promise<FaultProxy> {
  const random = seededRandom(options.seed);
  const rules = new Map<FaultTarget, FaultRule>();
  let injected: Array<{ op: S3Op; fault: FaultKind }> = [];

  const ruleFor = (op: S3Op): FaultRule => {
    const group = groupOf(op);
    return rules.get(op) ?? (group ? rules.get(group) : undefined) ?? rules.get('*') ?? {};
  };
  const note = (op: S3Op, fault: FaultKind): void => {
    injected.push({ op, fault });
  };

  const onRequest = async ({ op }: RequestInfo): Promise<ProxyDecision> => {
    const rule = ruleFor(op);
    if (rule.latencyMs && random() < (rule.latencyRate ?? 1)) {
      note(op, 'latency');
      await sleep(rule.latencyMs);
    }
    const draw = random();
    let threshold = rule.slowDown ?? 0;
    if (draw < threshold) {
      note(op, 'slowDown');
      return { status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' };
    }
    threshold += rule.internalError ?? 0;
    if (draw < threshold) {
      note(op, 'internalError');
      return { status: 500, code: 'InternalError', message: 'We encountered an internal error. Please try again.' };
    }
    threshold += rule.reset ?? 0;
    if (draw < threshold) {
      note(op, 'reset');
      return 'reset';
    }
    return 'pass';
  };

  const shapeResponse = (
    { op }: RequestInfo,
    status: number,
    headers: http.IncomingHttpHeaders,
  ): Transform | undefined => {
    if (status < 200 || status >= 300) return undefined;
    const rule = ruleFor(op);
    const length = Number(headers['content-length'] ?? 0);
    if (!rule.cutBody && !rule.trickle) return undefined;
    const draw = random();
    if (length >= 2 && draw < (rule.cutBody ?? 0)) {
      note(op, 'cutBody');
      const share = 0.1 + random() * 0.8;
      return new CutBody(Math.max(1, Math.min(length - 1, Math.floor(length * share))));
    }
    if (draw < (rule.cutBody ?? 0) + (rule.trickle ?? 0)) {
      note(op, 'trickle');
      return new TrickleBody(rule.trickleBytesPerSecond ?? 64 * 1024);
    }
    return undefined;
  };

  const proxy = await startRequestProxy(targetEndpoint, { onRequest, shapeResponse });
  return {
    endpoint: proxy.endpoint,
    proxy,
    setRule(target, rule) {
      rules.set(target, { ...rule });
    },
    clearRules() {
      rules.clear();
    },
    injected: () => injected.map((entry) => ({ ...entry })),
    injectedCount: (fault, op) => injected.filter((e) => e.fault === fault && (op === undefined || e.op === op)).length,
    counts: () => proxy.counts(),
    log: () => proxy.log(),
    reset() {
      proxy.reset();
      injected = [];
    },
    stop: () => proxy.stop(),
  };
}
