import { describe, expect, it } from 'vitest';
import type { CopyEvent, CopyStats } from '../../src/copy/events.js';
import { copyLog } from '../../src/progress/copy-log.js';
import { endpointHost, loggedArguments, makeRunId, redactUrl, showKey } from '../../src/progress/log-lines.js';
import type { LogTarget } from '../../src/progress/log-sink.js';

describe('redactUrl', () => {
  it('replaces passwords in user info and secret query parameters, leaves everything else as given', () => {
    expect(redactUrl('postgres://s3migrate:hunter2@db.example:5432/s3migrate')).toBe('postgres://s3migrate:***@db.example:5432/s3migrate');
    expect(redactUrl('postgres://u@db/s3?password=hunter2&sslmode=require')).toBe('postgres://u@db/s3?password=***&sslmode=require');
    expect(redactUrl('https://user:pw@minio.local:9000')).not.toContain('pw@');
    expect(redactUrl('https://minio.local:9000')).toBe('https://minio.local:9000');
    expect(redactUrl('s3://bucket/prefix?password=kept-as-a-key-name')).toBe('s3://bucket/prefix?password=kept-as-a-key-name');
    expect(redactUrl('./state.db')).toBe('./state.db');
    expect(redactUrl('64MiB')).toBe('64MiB');
  });

  it('loggedArguments redacts every string and array item, drops undefined', () => {
    expect(
      loggedArguments({ state: 'postgres://u:p@h/db', include: ['a', 'https://x:y@h'], quiet: true, from: undefined, n: 3 }),
    ).toEqual({ state: 'postgres://u:***@h/db', include: ['a', 'https://x:***@h/'], quiet: true, n: 3 });
  });
});

describe('log line helpers', () => {
  it('endpointHost keeps host and port only; AWS labels as they are', () => {
    expect(endpointHost({ endpoint: 'https://key:secret@s3.example.com:8443/base' })).toBe('s3.example.com:8443');
    expect(endpointHost({ endpoint: 'aws' })).toBe('aws');
    expect(endpointHost(undefined)).toBeNull();
  });

  it('run ids carry the UTC start time and the pid', () => {
    expect(makeRunId(Date.UTC(2025, 2, 1, 10, 15, 2))).toMatch(new RegExp(`^20250301T101502Z-${process.pid}-[0-9a-f]{6}$`));
    expect(makeRunId(0)).not.toBe(makeRunId(0));
  });

  it('showKey quotes keys with control characters only', () => {
    expect(showKey('a b/ü+%')).toBe('a b/ü+%');
    expect(showKey('line\nbreak')).toBe('"line\\nbreak"');
  });
});

describe('the JSON copy log', () => {
  const stats: CopyStats = {
    objectsTotal: 3,
    bytesTotal: 30,
    objectsDone: 3,
    bytesDone: 30,
    objectsFailed: 0,
    objectsChanged: 0,
    objectsGone: 0,
    objectsCopied: 1,
    bytesCopied: 10,
    inFlight: 0,
    bytesTransferred: 10,
    concurrency: 4,
    elapsedMs: 5,
  };
  const capture = (): { target: LogTarget; lines: () => Array<Record<string, unknown>> } => {
    const written: string[] = [];
    return {
      target: { format: 'json', terminal: false, sink: { writeLine: (line) => written.push(line), close: () => undefined } },
      lines: () => written.map((line) => JSON.parse(line) as Record<string, unknown>),
    };
  };

  it('writes what came before the engine counted the state (recovery) right after run-start, whose ts is the start', () => {
    const { target, lines } = capture();
    const log = copyLog(target, { flags: { to: 's3://b' }, intervalSeconds: 5 });
    log.describe({
      source: { endpoint: 'http://127.0.0.1:9000', bucket: 'a', prefix: 'p/' },
      destination: { endpoint: 'aws', bucket: 'b', prefix: '' },
      catalogComplete: false,
      snapshot: () => stats,
    });
    const events: CopyEvent[] = [
      { type: 'recovering', rows: 2 },
      { type: 'recovered', done: 2, pending: 0 },
      { type: 'start', runId: 7, objectsTotal: 3, bytesTotal: 30, objectsAlreadyDone: 2, bytesAlreadyDone: 20 },
      { type: 'object-skipped', key: 'glacier.bin', size: 5, reason: 'storage class GLACIER' },
      { type: 'finish', stats },
    ];
    expect(lines()).toEqual([]);
    for (const event of events.slice(0, 2)) log.onEvent(event);
    expect(lines()).toEqual([]); // held until run-start
    for (const event of events.slice(2)) log.onEvent(event);
    log.end({ outcome: 'completed', exitCode: 0, stats, outcomes: { failed: 0, changed: 0, gone: 0, unproven: 0, archived: 0 } });
    const out = lines();
    expect(out.map((line) => line.event)).toEqual(['run-start', 'recovered', 'object-skipped', 'run-end']);
    expect(out[0]).toMatchObject({
      command: 'copy',
      source: 's3://a/p/',
      sourceEndpoint: '127.0.0.1:9000',
      destination: 's3://b/',
      destEndpoint: 'aws',
      catalogComplete: false,
      stateRunId: 7,
      objectsAlreadyDone: 2,
    });
    expect(String(out[1]!.ts) >= String(out[0]!.ts)).toBe(true);
    expect(out[3]).toMatchObject({ outcome: 'completed', objectsCopied: 1, objectsTotal: 3, stateGone: 0, error: null });
  });

  it('a run that fails before counting the state still writes run-start (unknowns null) and run-end', () => {
    const { target, lines } = capture();
    const log = copyLog(target, { flags: {}, intervalSeconds: 5 });
    log.onEvent({ type: 'stopping', mode: 'drain' });
    log.end({ outcome: 'failed', exitCode: 1, error: 'no such bucket' });
    log.end({ outcome: 'failed', exitCode: 1, error: 'twice' }); // only once
    const out = lines();
    expect(out.map((line) => line.event)).toEqual(['run-start', 'stopping', 'run-end']);
    expect(out[0]).toMatchObject({ source: null, objectsTotal: null, stateRunId: null });
    expect(out[2]).toMatchObject({ objectsCopied: 0, objectsTotal: null, stateFailed: null, error: 'no such bucket' });
    expect(new Set(out.map((line) => line.run)).size).toBe(1);
  });
});
