/** The plan (`s3migrate plan`, `copy --dry-run`) as text for a terminal; `--json` prints the Plan itself. */
import type { Plan, SideCost } from '../plan/cost.js';
import type { RequestType } from '../plan/prices.js';
import { formatBytes, formatCount, formatDuration } from './format.js';

const CALL_NAMES: Record<RequestType, string> = {
  get: 'GetObject',
  head: 'HeadObject',
  list: 'ListObjectsV2',
  put: 'PutObject',
  createMultipartUpload: 'CreateMultipartUpload',
  uploadPart: 'UploadPart',
  completeMultipartUpload: 'CompleteMultipartUpload',
};

/** $1,234.56; small amounts keep four significant decimals ($0.0042) so they do not read as nothing. */
export function formatMoney(amount: number, currency: string): string {
  const digits = amount === 0 || amount >= 1 ? 2 : Math.min(6, Math.max(2, 1 - Math.floor(Math.log10(amount)) + 2));
  const number = amount.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: digits });
  return currency === 'USD' ? `$${number}` : `${number} ${currency}`;
}

function calls(counts: Partial<Record<RequestType, number>>): string {
  const shown = (Object.entries(counts) as Array<[RequestType, number]>)
    .filter(([type, count]) => count > 0 || type === 'get' || type === 'put')
    .map(([type, count]) => `${CALL_NAMES[type]} ${formatCount(count)}`);
  return shown.join(', ');
}

function costLine(label: string, side: SideCost, currency: string, isSource: boolean): string {
  const money = (amount: number): string => formatMoney(amount, currency);
  const parts = [`requests ${money(side.requestsCost)}`];
  if (isSource) parts.unshift(`egress ${money(side.egress.cost)}`);
  if (side.retrievalCost > 0) parts.push(`retrieval ${money(side.retrievalCost)}`);
  return `  ${label.padEnd(12)} ${money(side.total).padStart(12)}  ${side.name}: ${parts.join(', ')}`;
}

export function renderPlan(plan: Plan): string {
  const { objects, requests, cost } = plan;
  const lines: string[] = [];
  const count = (n: number): string => formatCount(n).padStart(12);
  const bytes = (n: number): string => formatBytes(n).padStart(11);
  lines.push(`To copy: ${formatCount(objects.toCopy.objects)} objects, ${formatBytes(objects.toCopy.bytes)}`);
  lines.push(
    `  one PUT     ${count(objects.singlePut.objects)} objects ${bytes(objects.singlePut.bytes)}` +
      `  (up to ${formatBytes(plan.settings.multipartThreshold)} each)`,
  );
  lines.push(
    `  multipart   ${count(objects.multipart.objects)} objects ${bytes(objects.multipart.bytes)}` +
      `  (${formatCount(objects.multipart.parts)} parts of ${formatBytes(plan.settings.partSize)} or more)`,
  );
  if (objects.archived.objects > 0) {
    const names = objects.byStorageClass.filter((c) => c.archived).map((c) => c.storageClass).join(', ');
    lines.push(
      `  archived    ${count(objects.archived.objects)} objects ${bytes(objects.archived.bytes)}` +
        `  (${names}: restore them first; not counted below)`,
    );
  }
  lines.push('');
  lines.push(`Requests: ${formatCount(requests.total)}`);
  lines.push(`  source       ${calls({ get: requests.source.get, head: requests.source.head, list: requests.source.list })}`);
  lines.push(
    `  destination  ${calls({
      put: requests.dest.put,
      createMultipartUpload: requests.dest.createMultipartUpload,
      uploadPart: requests.dest.uploadPart,
      completeMultipartUpload: requests.dest.completeMultipartUpload,
      head: requests.dest.head,
    })}`,
  );
  lines.push('');
  const { duration } = plan;
  const limit =
    duration.limitedBy === 'bandwidth'
      ? `bandwidth-bound at ${formatBytes(duration.bytesPerSecond)}/s`
      : `request-bound at ${formatCount(Math.round(duration.requestsPerSecond))} requests/s`;
  lines.push(`Estimated time: ${formatDuration(duration.seconds * 1000)} (${limit}; ${duration.basis})`);
  lines.push('');
  lines.push(`Estimated cost: ${formatMoney(cost.total, cost.currency)}`);
  lines.push(costLine('source', cost.source, cost.currency, true));
  lines.push(costLine('destination', cost.dest, cost.currency, false));
  if (plan.warnings.length > 0) {
    lines.push('');
    for (const warning of plan.warnings) lines.push(`Warning: ${warning}`);
  }
  lines.push('');
  for (const note of plan.notes) lines.push(`Note: ${note}`);
  return `${lines.join('\n')}\n`;
}
