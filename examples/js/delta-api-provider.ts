/**
 * govlab's HTTP API as a smart-search `DatabaseProvider` ("delta-api").
 *
 * Row filters and masks are enforced by the server for the principal of the bearer token;
 * this provider only maps smart-search's calls onto `GET /search` and back:
 *
 * - `search(query, {limit, offset})` -> `page`/`pageSize` (windows that do not line up
 *   with a page are fetched as the pages that cover them and sliced);
 * - each row -> a `SearchResult` (id/title/... from a column map), with the masked row and
 *   the page's summary (`PageSummary`: total, totalExact, masked fields, versions, the
 *   server's cache status) in `metadata`; `searchPage()` returns that summary once, typed;
 * - `total` is exact up to the server's count limit (GOVLAB_COUNT_LIMIT, 10,000); past it
 *   `totalExact` is false and `total` is a lower bound (shown as `10000+`). Servers older
 *   than `totalExact` omit it, which reads as true. `exactTotal: true` sends
 *   `exactTotal=true` so the server counts every match;
 * - a non-2xx answer -> a thrown `DeltaApiError` carrying the HTTP status.
 *
 * smart-search 3.1 catches a provider's error, logs it, calls the provider once more as its
 * "fallback" (the same provider when there is no cache), and then answers `results: []`
 * plus the message in `performance.errors`. So that a client error is not sent twice and
 * its status is not lost, the provider keeps a record per call, filed under the options
 * object smart-search passes to both attempts (see `outcome()`):
 *
 * - a 4xx, a timeout or a refused option is final: the fallback attempt rethrows the same
 *   error without a request, and `timeoutMs` bounds the whole call, fallback included;
 * - a 5xx or a connection failure is transient: the fallback attempt sends again with
 *   what is left of the call's time, and a success records what it recovered from.
 *
 * `smartSearchPage()` (smart-search-bridge.ts) reads that record after a SmartSearch call.
 */

import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';

import type {
  DatabaseProvider,
  HealthStatus,
  SearchFilters,
  SearchOptions,
  SearchResult,
} from 'smart-search-types';

// ------------------------------------------------------------------ govlab's API types

export type Dataset = 'healthcare' | 'ecommerce' | 'financial';
export type Format = 'delta' | 'parquet' | 'iceberg';
export type Row = Record<string, unknown>;
export type CacheStatus = 'hit' | 'miss' | 'bypass';

/** The body of `GET /search` (as `fetchPage` returns it: `totalExact` always set). */
export interface GovlabPage {
  items: Row[];
  page: number;
  pageSize: number;
  /** Matches visible to the principal; a lower bound when `totalExact` is false. */
  total: number;
  /** False when the server stopped counting at its count limit (GOVLAB_COUNT_LIMIT). */
  totalExact: boolean;
  maskedFields: string[];
  sort: string;
  tableVersion: number;
  policyVersion: string;
  role: string;
  strategy: { cache: CacheStatus; engine: string; pushdown: boolean };
  tookMs: number;
}

/** `GET /search` as sent: servers that predate the count limit omit `totalExact`. */
export type GovlabWirePage = Omit<GovlabPage, 'totalExact'> & { totalExact?: boolean };

/** The body of `GET /health`. */
export interface GovlabHealth {
  status?: 'ok' | 'degraded';
  redis?: string;
  dataRoot?: string;
  demoAuth?: boolean;
  versions?: Record<string, string>;
}

/** What one page of results says about itself; every result's `metadata` carries it. */
export interface PageSummary {
  role: string;
  /** Matches visible to the principal; a lower bound when `totalExact` is false. */
  total: number;
  totalExact: boolean;
  page: number;
  pageSize: number;
  maskedFields: string[];
  tableVersion: number;
  policyVersion: string;
  /** The govlab server's Redis page cache for this page. */
  cache: CacheStatus;
}

/** One search's rows and the page they came from (per call: no shared provider state). */
export interface SearchPage {
  results: SearchResult[];
  page: PageSummary;
}

/** A page with `totalExact` filled in: anything but an explicit `false` means exact. */
export function normalizePage(body: GovlabWirePage): GovlabPage {
  return { ...body, totalExact: body.totalExact !== false };
}

export function summarize(page: GovlabPage): PageSummary {
  return {
    role: page.role,
    total: page.total,
    totalExact: page.totalExact,
    page: page.page,
    pageSize: page.pageSize,
    maskedFields: page.maskedFields,
    tableVersion: page.tableVersion,
    policyVersion: page.policyVersion,
    cache: page.strategy?.cache,
  };
}

/** `597`, or `10000+` when the total is a lower bound (missing `totalExact`: exact). */
export function describeTotal(page: { total: number; totalExact?: boolean }): string {
  return `${page.total}${page.totalExact === false ? '+' : ''}`;
}

/** Which row columns fill which SearchResult fields (`id` and `title` are required). */
export interface ColumnMap {
  id: string;
  title: string;
  subtitle?: string;
  description?: string;
  category?: string;
  createdAt?: string;
}

export const DEFAULT_COLUMNS: Record<Dataset, ColumnMap> = {
  healthcare: {
    id: 'patient_id',
    title: 'name',
    subtitle: 'condition',
    description: 'notes',
    category: 'region',
    createdAt: 'admitted_at',
  },
  ecommerce: {
    id: 'order_id',
    title: 'product',
    subtitle: 'customer_name',
    description: 'status',
    category: 'category',
    createdAt: 'ordered_at',
  },
  financial: {
    id: 'account_id',
    title: 'holder_name',
    subtitle: 'account_type',
    description: 'branch',
    category: 'region',
    createdAt: 'txn_date',
  },
};

export const MAX_PAGE_SIZE = 200; // the API's limit
export const DEFAULT_LIMIT = 20;
export const DEFAULT_URL = 'http://127.0.0.1:8000';
export const DEFAULT_TIMEOUT_MS = 30_000;
/** How long after a failed attempt a call with the same options object and query counts
 * as smart-search's fallback attempt of that call (it follows at once, in the same tick
 * or after one cache lookup); later, it is a new call. */
export const FALLBACK_WINDOW_MS = 1_000;
/** Reads of a multi-page window that saw the table or policy change between its pages
 * before giving up (a reseed or policy edit landed mid-read). */
const MAX_WINDOW_READS = 3;
const DATASETS: readonly Dataset[] = ['healthcare', 'ecommerce', 'financial'];
const FORMATS: readonly Format[] = ['delta', 'parquet', 'iceberg'];

/** A non-2xx answer from the govlab API, no answer (status 0), or an option it refuses. */
export class DeltaApiError extends Error {
  /** The HTTP status; 0 when there was no HTTP answer. */
  readonly status: number;
  readonly detail: string;
  /** No answer within the call's `timeoutMs`. */
  readonly timedOut: boolean;
  /** Worth sending again: a 5xx or a failed connection. A 4xx is the server's answer to
   * this very request, a timeout has spent the call's time, a refused option stays so. */
  readonly retryable: boolean;

  constructor(
    status: number,
    detail: string,
    options: { timedOut?: boolean; retryable?: boolean } = {},
  ) {
    super(status ? `delta-api: HTTP ${status}: ${detail}` : `delta-api: ${detail}`);
    this.name = 'DeltaApiError';
    this.status = status;
    this.detail = detail;
    this.timedOut = options.timedOut ?? false;
    this.retryable = options.retryable ?? status >= 500;
  }

  /** One line wherever it is logged. smart-search logs every failed attempt with its
   * stack (four times for one call); the stack of an HTTP answer tells nothing more. */
  [inspect.custom](): string {
    return `${this.name}: ${this.message}`;
  }
}

/** The claims of a govlab bearer token (HS256 JWT), as the client can read them. */
export interface TokenClaims {
  sub: string;
  role: string;
  attrs: Record<string, unknown>;
  /** Expiry, seconds since the epoch. */
  exp?: number;
}

/** A token's claims, read WITHOUT checking its signature (only the server can), or null
 * when it is not a JWT with `sub`, `role` and `attrs`. Use it to label, never to trust. */
export function readTokenClaims(token: string): TokenClaims | null {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as unknown;
    if (typeof claims !== 'object' || claims === null) return null;
    const { sub, role, attrs, exp } = claims as Record<string, unknown>;
    if (typeof sub !== 'string' || typeof role !== 'string') return null;
    if (typeof attrs !== 'object' || attrs === null || Array.isArray(attrs)) return null;
    return {
      sub,
      role,
      attrs: attrs as Record<string, unknown>,
      ...(typeof exp === 'number' ? { exp } : {}),
    };
  } catch {
    return null;
  }
}

export interface DeltaApiProviderOptions {
  url: string;
  /** A govlab bearer token: the one principal every search of this provider runs as. */
  token: string;
  dataset?: Dataset;
  format?: Format;
  columns?: Partial<ColumnMap>;
  /** SearchResult.type of every result (smart-search's union, e.g. 'healthcare_data';
   * default 'custom'). */
  resultType?: SearchResult['type'];
  /** Time for one search call, smart-search's fallback attempt included (default 30 s). */
  timeoutMs?: number;
  /** Send `exactTotal=true`: the server counts every match instead of stopping at its
   * count limit (a separate server-side cache entry; slower for broad queries). */
  exactTotal?: boolean;
  /** Injected for tests; defaults to the global fetch (Node 20+). */
  fetch?: typeof fetch;
}

/** The pages of `pageSize` rows covering rows [offset, offset + limit). */
export interface PageWindow {
  pageSize: number;
  firstPage: number;
  lastPage: number;
  /** Rows to drop from the start of the first page. */
  skip: number;
  limit: number;
}

export function pageWindow(options: Pick<SearchOptions, 'limit' | 'offset'> = {}): PageWindow {
  const limit = options.limit ?? DEFAULT_LIMIT;
  const offset = options.offset ?? 0;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(`delta-api: limit must be a positive integer, got ${limit}`);
  }
  if (!Number.isInteger(offset) || offset < 0) {
    throw new RangeError(`delta-api: offset must be a non-negative integer, got ${offset}`);
  }
  const pageSize = Math.min(limit, MAX_PAGE_SIZE);
  const firstPage = Math.floor(offset / pageSize) + 1;
  const lastPage = Math.floor((offset + limit - 1) / pageSize) + 1;
  return { pageSize, firstPage, lastPage, skip: offset - (firstPage - 1) * pageSize, limit };
}

/** smart-search's sortBy/sortOrder as govlab's `sort` (`col` or `-col`), or undefined. */
export function sortParam(options: SearchOptions, columns: ColumnMap): string | undefined {
  let column: string | undefined;
  switch (options.sortBy ?? 'relevance') {
    case 'relevance':
      return undefined; // the server's order: the primary key
    case 'name':
      column = columns.title;
      break;
    case 'date':
      column = columns.createdAt;
      break;
    case 'custom':
      column = options.filters?.custom?.sort;
      break;
    default:
      throw new DeltaApiError(0, `sortBy '${options.sortBy}' is not supported`);
  }
  if (!column) {
    throw new DeltaApiError(0, `sortBy '${options.sortBy}' has no column to sort on`);
  }
  const bare = column.replace(/^[-+]/, '');
  return options.sortOrder === 'desc' && !column.startsWith('-') ? `-${bare}` : column;
}

function checkFilters(filters: SearchFilters | undefined): void {
  if (!filters) return;
  const used = Object.entries(filters).filter(([key, value]) => {
    if (key === 'custom') {
      return Object.keys(value ?? {}).some((k) => k !== 'sort');
    }
    return Array.isArray(value) ? value.length > 0 : value !== undefined;
  });
  if (used.length) {
    // Silently ignoring a filter would return rows the caller meant to exclude.
    throw new DeltaApiError(
      0,
      `filters are not supported by govlab search (${used.map(([k]) => k).join(', ')}); ` +
        'put the terms in the query text',
    );
  }
}

function text(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  return typeof value === 'string' ? value : String(value);
}

/** One served (already masked) row as a SearchResult. */
export function toSearchResult(
  row: Row,
  page: GovlabPage,
  columns: ColumnMap,
  context: { dataset: Dataset; format: Format; resultType: SearchResult['type'] },
): SearchResult {
  const result: SearchResult = {
    id: text(row[columns.id]) ?? '',
    type: context.resultType,
    title: text(row[columns.title]) ?? '',
    matchType: 'custom',
    relevanceScore: 1, // govlab returns rows in sort order, not ranked
    metadata: { row, dataset: context.dataset, format: context.format, ...summarize(page) },
  };
  for (const field of ['subtitle', 'description', 'category', 'createdAt'] as const) {
    const column = columns[field];
    const value = column ? text(row[column]) : undefined;
    if (value !== undefined) result[field] = value;
  }
  return result;
}

/** What one search call came to: its page, or the error its last attempt ended with. */
export interface CallOutcome {
  query: string;
  /** Set when the call answered. */
  page?: PageSummary;
  /** Set when the call's last attempt failed. */
  error?: Error;
  /** How many times the call was attempted (smart-search's fallback makes it 2). */
  attempts: number;
  /** Errors of earlier attempts that a later attempt of the same call recovered from. */
  recovered: string[];
}

interface CallRecord extends CallOutcome {
  /** When the call's time (timeoutMs) runs out, fallback attempt included. */
  deadline: number;
  failedAt: number;
  /** The fallback attempt has happened: a further call is a new call. */
  fallbackUsed: boolean;
}

function isFinal(error: Error): boolean {
  return !(error instanceof DeltaApiError && error.retryable);
}

export class DeltaApiProvider implements DatabaseProvider {
  readonly name = 'delta-api';
  readonly url: string;
  readonly dataset: Dataset;
  readonly format: Format;
  readonly columns: ColumnMap;
  readonly resultType: SearchResult['type'];
  /** Whether searches send `exactTotal=true` (count every match). */
  readonly exactTotal: boolean;
  readonly timeoutMs: number;
  /** The token's claims, unverified (see readTokenClaims); null if it is not a JWT. */
  readonly claims: TokenClaims | null;
  private readonly token: string;
  private readonly fetchImpl: typeof fetch;
  private connected = false;
  /** One record per search call, filed under the options object smart-search passes to
   * every attempt of that call; garbage-collected with it. */
  private readonly calls = new WeakMap<object, CallRecord>();

  constructor(options: DeltaApiProviderOptions) {
    if (!options.url) throw new DeltaApiError(0, 'a url is required');
    if (!options.token) throw new DeltaApiError(0, 'a bearer token is required');
    this.url = options.url.replace(/\/+$/, '');
    this.token = options.token;
    this.claims = readTokenClaims(options.token);
    this.dataset = options.dataset ?? 'healthcare';
    this.format = options.format ?? 'delta';
    if (!DATASETS.includes(this.dataset)) {
      throw new DeltaApiError(0, `unknown dataset '${this.dataset}'`);
    }
    if (!FORMATS.includes(this.format)) {
      throw new DeltaApiError(0, `unknown format '${this.format}'`);
    }
    if (options.exactTotal !== undefined && typeof options.exactTotal !== 'boolean') {
      const got = JSON.stringify(options.exactTotal);
      throw new DeltaApiError(0, `exactTotal must be true or false, got ${got}`);
    }
    this.exactTotal = options.exactTotal ?? false;
    this.columns = { ...DEFAULT_COLUMNS[this.dataset], ...options.columns } as ColumnMap;
    this.resultType = options.resultType ?? 'custom';
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(this.timeoutMs > 0)) {
      throw new DeltaApiError(0, `timeoutMs must be positive, got ${options.timeoutMs}`);
    }
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** Checks that the API answers (`GET /health`); throws the DeltaApiError if not. */
  async connect(): Promise<void> {
    await this.open(Date.now() + this.timeoutMs);
  }

  async disconnect(): Promise<void> {
    this.connected = false;
  }

  async isConnected(): Promise<boolean> {
    return this.connected;
  }

  /** smart-search 3.1's HealthStatus: `status` is 'healthy', 'degraded' when govlab's
   * /health says so (Redis away: pages served uncached) or 'unhealthy' without an
   * answer; `details` is govlab's /health body. Never throws. */
  async checkHealth(): Promise<HealthStatus> {
    const started = performance.now();
    const timestamp = new Date().toISOString();
    try {
      const body = (await this.request('/health', false, Date.now() + this.timeoutMs)) as
        | GovlabHealth
        | undefined;
      const latency = Math.round(performance.now() - started);
      const errors: string[] = [];
      if (body?.dataRoot !== 'ok') errors.push(`data root ${body?.dataRoot}`);
      if (body?.redis !== 'ok') errors.push(`redis ${body?.redis}: pages served uncached`);
      const healthy = errors.length === 0 && (body?.status ?? 'ok') === 'ok';
      return {
        status: healthy ? 'healthy' : 'degraded',
        isConnected: true,
        isSearchAvailable: body?.dataRoot === 'ok',
        latency,
        responseTime: latency,
        errors,
        message: healthy ? 'govlab API ok' : `govlab API degraded: ${errors.join('; ')}`,
        timestamp,
        details: { ...body },
      };
    } catch (error) {
      const detail = error instanceof DeltaApiError ? error.detail : String(error);
      return {
        status: 'unhealthy',
        isConnected: false,
        isSearchAvailable: false,
        latency: -1,
        errors: [detail],
        message: detail,
        timestamp,
      };
    }
  }

  /** smart-search's DatabaseProvider.search: the rows of the window, as SearchResults. */
  async search(query: string, options: SearchOptions = {}): Promise<SearchResult[]> {
    return (await this.searchPage(query, options)).results;
  }

  /** The rows of the window and the summary of the page they came from. */
  async searchPage(query: string, options: SearchOptions = {}): Promise<SearchPage> {
    const record = this.attempt(query, options);
    try {
      if (record.error && isFinal(record.error)) throw record.error; // replay, no request
      checkFilters(options.filters);
      const window = pageWindow(options);
      const sort = sortParam(options, this.columns);
      if (!this.connected) await this.open(record.deadline);
      const { rows, last } = await this.readWindow(query, window, sort, record.deadline);
      const page = summarize(last);
      const context = { dataset: this.dataset, format: this.format, resultType: this.resultType };
      const results = rows
        .slice(window.skip, window.skip + window.limit)
        .map((row) => toSearchResult(row, last, this.columns, context));
      if (record.error) record.recovered.push(record.error.message);
      record.error = undefined;
      record.page = page;
      return { results, page };
    } catch (error) {
      record.error = error instanceof Error ? error : new Error(String(error));
      record.failedAt = Date.now();
      throw record.error;
    }
  }

  /** What the search call made with this options object came to (the object smart-search
   * was given: it passes that same object to the provider). Undefined if none was made. */
  outcome(options: SearchOptions): CallOutcome | undefined {
    const record = this.calls.get(options);
    if (!record) return undefined;
    const { query, page, error, attempts, recovered } = record;
    return { query, page, error, attempts, recovered: [...recovered] };
  }

  /** The table and policy versions this principal searches now: a one-row search, which
   * the server answers from its page cache while neither has changed. */
  async currentVersions(): Promise<{ tableVersion: number; policyVersion: string; role: string }> {
    const page = await this.fetchPage('', 1, 1, undefined, Date.now() + this.timeoutMs);
    return { tableVersion: page.tableVersion, policyVersion: page.policyVersion, role: page.role };
  }

  /** One raw `GET /search` page (already filtered and masked by the server). */
  async fetchPage(
    query: string,
    page: number,
    pageSize: number,
    sort?: string,
    deadline: number = Date.now() + this.timeoutMs,
  ): Promise<GovlabPage> {
    const params = new URLSearchParams({
      dataset: this.dataset,
      format: this.format,
      q: query,
      page: String(page),
      pageSize: String(pageSize),
    });
    if (sort) params.set('sort', sort);
    if (this.exactTotal) params.set('exactTotal', 'true');
    const body = (await this.request(`/search?${params}`, true, deadline)) as GovlabWirePage;
    return normalizePage(body);
  }

  /** This attempt's call record: a new call, or smart-search's fallback attempt of the
   * call that just failed with the same options object and query. */
  private attempt(query: string, options: SearchOptions): CallRecord {
    const now = Date.now();
    const previous = this.calls.get(options);
    if (
      previous &&
      previous.error &&
      !previous.fallbackUsed &&
      previous.query === query &&
      now - previous.failedAt <= FALLBACK_WINDOW_MS
    ) {
      previous.attempts += 1;
      previous.fallbackUsed = true;
      if (previous.deadline <= now && !isFinal(previous.error)) {
        previous.error = new DeltaApiError(0, `no answer within ${this.timeoutMs} ms`, {
          timedOut: true,
        });
      }
      return previous;
    }
    const record: CallRecord = {
      query,
      attempts: 1,
      recovered: [],
      deadline: now + this.timeoutMs,
      failedAt: 0,
      fallbackUsed: false,
    };
    this.calls.set(options, record);
    return record;
  }

  private async open(deadline: number): Promise<void> {
    await this.request('/health', false, deadline);
    this.connected = true;
  }

  /** The pages covering a window, all of one table and policy version (a multi-page window
   * that straddles a reseed or policy edit is read again, a bounded number of times). */
  private async readWindow(
    query: string,
    window: PageWindow,
    sort: string | undefined,
    deadline: number,
  ): Promise<{ rows: Row[]; last: GovlabPage }> {
    for (let read = 1; ; read++) {
      const rows: Row[] = [];
      let first: GovlabPage | undefined;
      let last: GovlabPage | undefined;
      for (let number = window.firstPage; number <= window.lastPage; number++) {
        last = await this.fetchPage(query, number, window.pageSize, sort, deadline);
        first ??= last;
        rows.push(...last.items);
        if (last.items.length < window.pageSize) break; // past the last visible row
      }
      if (!first || !last) throw new DeltaApiError(0, 'empty page window'); // unreachable
      const consistent =
        first.tableVersion === last.tableVersion && first.policyVersion === last.policyVersion;
      if (consistent) return { rows, last };
      if (read >= MAX_WINDOW_READS) {
        throw new DeltaApiError(0, 'the table or policy kept changing while reading; try again', {
          retryable: true,
        });
      }
    }
  }

  private async request(path: string, authorised: boolean, deadline: number): Promise<unknown> {
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      throw new DeltaApiError(0, `no answer within ${this.timeoutMs} ms`, { timedOut: true });
    }
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (authorised) headers.Authorization = `Bearer ${this.token}`;
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.url}${path}`, {
        headers,
        signal: AbortSignal.timeout(remaining),
      });
    } catch (error) {
      throw this.noAnswer(error);
    }
    if (response.ok) {
      try {
        return await response.json(); // the body is read under the same time limit
      } catch (error) {
        if (!(error instanceof SyntaxError)) throw this.noAnswer(error);
        throw new DeltaApiError(response.status, 'the answer is not JSON', { retryable: true });
      }
    }
    let detail = response.statusText || 'request failed';
    try {
      const body = (await response.json()) as { detail?: unknown };
      if (body && body.detail !== undefined) detail = String(body.detail);
    } catch {
      // not JSON (or cut short): keep the status text
    }
    throw new DeltaApiError(response.status, detail);
  }

  private noAnswer(error: unknown): DeltaApiError {
    if (error instanceof DeltaApiError) return error;
    const name = (error as { name?: string }).name;
    if (name === 'TimeoutError' || name === 'AbortError') {
      return new DeltaApiError(0, `no answer from ${this.url} within ${this.timeoutMs} ms`, {
        timedOut: true,
      });
    }
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const reason = cause?.code ?? cause?.message ?? (error as Error).message ?? String(error);
    return new DeltaApiError(0, `cannot reach ${this.url}: ${reason}`, { retryable: true });
  }
}

// ------------------------------------------------------------------ config (fromConfig)

/**
 * The config file this example reads (`fromConfig`). It borrows the shape of smart-search's
 * config file, but smart-search 3.1's own `SmartSearchFactory.fromConfig()` cannot read it:
 * its factory builds only its own database types (it throws `Unsupported database type:
 * delta-api`) and its validator wants `search.tables`.
 */
export interface DeltaApiConfigFile {
  database: {
    type: 'delta-api';
    connection: { url?: string; token?: string };
    options?: {
      dataset?: Dataset;
      format?: Format;
      timeoutMs?: number;
      columns?: Partial<ColumnMap>;
      resultType?: SearchResult['type'];
      /** Send `exactTotal=true` on every search (see DeltaApiProviderOptions). */
      exactTotal?: boolean;
    };
  };
  cache?: unknown;
  search?: { fallback?: 'database' | 'cache'; [key: string]: unknown };
  [key: string]: unknown;
}

/** `${VAR}` and `${VAR:-default}` from the environment: this example's own expansion, for
 * connection strings (smart-search's ConfigLoader expands no variables). */
export function expandEnv(value: string, env: NodeJS.ProcessEnv = process.env): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_, name, fallback) => {
    const found = env[name];
    return found !== undefined && found !== '' ? found : (fallback ?? '');
  });
}

export interface FromConfigOverrides {
  url?: string;
  token?: string;
  dataset?: Dataset;
  format?: Format;
  /** Wins over the file's `options.exactTotal` when set. */
  exactTotal?: boolean;
  env?: NodeJS.ProcessEnv;
  fetch?: typeof fetch;
}

/** A provider from a parsed config object; explicit overrides win over the file, and
 * the file over GOVLAB_API_URL / GOVLAB_TOKEN. */
export function providerFromConfigObject(
  config: DeltaApiConfigFile,
  overrides: FromConfigOverrides = {},
): DeltaApiProvider {
  const env = overrides.env ?? process.env;
  const { type, connection = {}, options = {} } = config.database ?? ({} as never);
  if (type !== 'delta-api') {
    throw new DeltaApiError(0, `database.type must be 'delta-api', got '${type}'`);
  }
  if (config.cache !== undefined) {
    throw new DeltaApiError(
      0,
      "a 'cache' section is refused for delta-api: smart-search keys its cache by query " +
        "alone, so one principal could be served another's masked page. Pass a shared " +
        'CacheProvider to smartSearchConfig(provider, {sharedCache}) instead: it is wrapped ' +
        'in a PrincipalScopedCache',
    );
  }
  const fromFile = (value: string | undefined) => (value ? expandEnv(value, env) : '');
  return new DeltaApiProvider({
    url: overrides.url || fromFile(connection.url) || env.GOVLAB_API_URL || DEFAULT_URL,
    token: overrides.token || fromFile(connection.token) || env.GOVLAB_TOKEN || '',
    dataset: overrides.dataset ?? options.dataset,
    format: overrides.format ?? options.format,
    columns: options.columns,
    resultType: options.resultType,
    timeoutMs: options.timeoutMs,
    exactTotal: overrides.exactTotal ?? options.exactTotal,
    fetch: overrides.fetch,
  });
}

/** A provider from this example's config file (not smart-search's SmartSearchFactory). */
export function fromConfig(path: string, overrides: FromConfigOverrides = {}): DeltaApiProvider {
  const config = JSON.parse(readFileSync(path, 'utf8')) as DeltaApiConfigFile;
  return providerFromConfigObject(config, overrides);
}
