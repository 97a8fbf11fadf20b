/**
 * govlab's HTTP API as a smart-search `DatabaseProvider` ("delta-api"), and a live example.
 *
 *   cd examples/js && npm ci
 *   TOKEN=$(../../.venv/bin/govlab token --role clinician --attr id=C007)
 *   npx tsx search-delta-redis.ts --url http://127.0.0.1:8000 --token "$TOKEN" --query asthma
 *   GOVLAB_URL=... GOVLAB_TOKEN=... npx tsx search-delta-redis.ts --config smart-search.config.json
 *   npx tsx search-delta-redis.ts ... --exact-total   # count every match (slower on broad queries)
 *
 * Row filters and masks are enforced by the server for the principal of the bearer token;
 * this provider only maps smart-search's calls onto `GET /search` and back:
 *
 * - `search(query, {limit, offset})` -> `page`/`pageSize` (windows that do not line up
 *   with a page are fetched as the pages that cover them and sliced);
 * - each row -> a `SearchResult` (id/title/... from a column map), with the masked row,
 *   `maskedFields`, `total` and `totalExact`, table and policy versions and the server's
 *   cache status in `metadata`;
 * - `total` is exact up to the server's count limit (GOVLAB_COUNT_LIMIT, 10,000); past it
 *   the server stops counting, `totalExact` is false and `total` is a lower bound (shown
 *   as `10000+`). Servers older than `totalExact` omit it, which reads as true. The
 *   `exactTotal: true` option (or `options.exactTotal` in the config file, `--exact-total`
 *   here) sends `exactTotal=true` so the server counts every match;
 * - a non-2xx answer -> a thrown `DeltaApiError` carrying the HTTP status and the server's
 *   message.
 *
 * Identity and caching: one provider holds one token, i.e. one principal. smart-search's
 * own cache key (`search:` + query/filters/sort/limit) carries no identity, so a
 * client-side cache in front of this provider could serve one principal's masked page to
 * another. This module therefore keeps no cache of its own, refuses a config with a
 * `cache` section, and builds SmartSearch without a cache provider. The server already
 * caches pages in Redis keyed by role and attributes (and table and policy versions).
 *
 * `@bilgrami/smart-search` is not on the npm registry, so its interfaces are declared
 * below, structurally identical to its `src/types.ts`: the provider can be passed to
 * `new SmartSearch({database: provider, fallback: 'database'})` wherever the package is
 * installed, and the live example uses SmartSearch when it can import it.
 */

import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

// ------------------------------------------------------------------ smart-search's types
// Structurally identical to @bilgrami/smart-search (src/types.ts).

export interface SearchResult {
  id: string;
  type: 'book' | 'user' | 'book_club' | 'author' | 'qa' | 'custom';
  title: string;
  subtitle?: string;
  description?: string;
  author?: string;
  category?: string;
  language?: string;
  visibility?: string;
  thumbnail?: string;
  profilePicture?: string;
  coverImage?: string;
  memberCount?: number;
  bookCount?: number;
  createdAt?: string;
  viewCount?: number;
  tags?: string[];
  isbn?: string;
  uploaderName?: string;
  uploaderEmail?: string;
  matchType:
    | 'title'
    | 'author'
    | 'description'
    | 'username'
    | 'name'
    | 'tag'
    | 'category'
    | 'language'
    | 'isbn'
    | 'uploader'
    | 'question'
    | 'answer'
    | 'custom';
  relevanceScore: number;
  bookTitle?: string;
  metadata?: Record<string, any>;
}

export interface SearchFilters {
  type?: string[];
  category?: string[];
  language?: string[];
  visibility?: string[];
  dateRange?: { start?: string; end?: string };
  custom?: Record<string, any>;
}

export interface SearchOptions {
  limit?: number;
  offset?: number;
  filters?: SearchFilters;
  sortBy?: 'relevance' | 'date' | 'views' | 'name' | 'custom';
  sortOrder?: 'asc' | 'desc';
  cacheEnabled?: boolean;
  cacheTTL?: number;
  fallbackEnabled?: boolean;
}

export interface HealthStatus {
  isConnected: boolean;
  isSearchAvailable: boolean;
  latency: number;
  memoryUsage: string;
  keyCount: number;
  lastSync: string | null;
  errors: string[];
}

export interface DatabaseProvider {
  name: string;
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  isConnected(): Promise<boolean>;
  search(query: string, options: SearchOptions): Promise<SearchResult[]>;
  checkHealth(): Promise<HealthStatus>;
}

// ------------------------------------------------------------------ govlab's API types

export type Dataset = 'healthcare' | 'ecommerce' | 'financial';
export type Format = 'delta' | 'parquet' | 'iceberg';
export type Row = Record<string, unknown>;

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
  strategy: { cache: 'hit' | 'miss' | 'bypass'; engine: string; pushdown: boolean };
  tookMs: number;
}

/** `GET /search` as sent: servers that predate the count limit omit `totalExact`. */
export type GovlabWirePage = Omit<GovlabPage, 'totalExact'> & { totalExact?: boolean };

/** A page with `totalExact` filled in: anything but an explicit `false` means exact. */
export function normalizePage(body: GovlabWirePage): GovlabPage {
  return { ...body, totalExact: body.totalExact !== false };
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
const DATASETS: readonly Dataset[] = ['healthcare', 'ecommerce', 'financial'];
const FORMATS: readonly Format[] = ['delta', 'parquet', 'iceberg'];

/** A non-2xx answer (or no answer: status 0) from the govlab API. */
export class DeltaApiError extends Error {
  readonly status: number;
  readonly detail: string;

  constructor(status: number, detail: string) {
    super(status ? `delta-api: HTTP ${status}: ${detail}` : `delta-api: ${detail}`);
    this.name = 'DeltaApiError';
    this.status = status;
    this.detail = detail;
  }
}

export interface DeltaApiProviderOptions {
  url: string;
  /** A govlab bearer token: the one principal every search of this provider runs as. */
  token: string;
  dataset?: Dataset;
  format?: Format;
  columns?: Partial<ColumnMap>;
  /** SearchResult.type of every result (smart-search's union; default 'custom'). */
  resultType?: SearchResult['type'];
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
    metadata: {
      row,
      maskedFields: page.maskedFields,
      dataset: context.dataset,
      format: context.format,
      role: page.role,
      total: page.total,
      totalExact: page.totalExact,
      page: page.page,
      pageSize: page.pageSize,
      tableVersion: page.tableVersion,
      policyVersion: page.policyVersion,
      cache: page.strategy?.cache,
    },
  };
  for (const field of ['subtitle', 'description', 'category', 'createdAt'] as const) {
    const column = columns[field];
    const value = column ? text(row[column]) : undefined;
    if (value !== undefined) result[field] = value;
  }
  return result;
}

export class DeltaApiProvider implements DatabaseProvider {
  readonly name = 'delta-api';
  readonly url: string;
  readonly dataset: Dataset;
  readonly format: Format;
  readonly columns: ColumnMap;
  /** Whether searches send `exactTotal=true` (count every match). */
  readonly exactTotal: boolean;
  /** The last page's metadata (total, totalExact, masked fields, versions, cache status). */
  lastPage: Omit<GovlabPage, 'items'> | null = null;
  private readonly token: string;
  private readonly resultType: SearchResult['type'];
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;
  private connected = false;

  constructor(options: DeltaApiProviderOptions) {
    if (!options.url) throw new DeltaApiError(0, 'a url is required');
    if (!options.token) throw new DeltaApiError(0, 'a bearer token is required');
    this.url = options.url.replace(/\/+$/, '');
    this.token = options.token;
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
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  async connect(): Promise<void> {
    const health = await this.checkHealth();
    if (!health.isConnected) {
      throw new DeltaApiError(0, health.errors.join('; '));
    }
    this.connected = true;
  }

  async disconnect(): Promise<void> {
    this.connected = false;
  }

  async isConnected(): Promise<boolean> {
    return this.connected;
  }

  async checkHealth(): Promise<HealthStatus> {
    const started = performance.now();
    const status: HealthStatus = {
      isConnected: false,
      isSearchAvailable: false,
      latency: -1,
      memoryUsage: 'n/a',
      keyCount: 0,
      lastSync: null,
      errors: [],
    };
    try {
      const body = (await this.request('/health', false)) as {
        status?: string;
        redis?: string;
        dataRoot?: string;
      };
      status.latency = Math.round(performance.now() - started);
      status.isConnected = true;
      status.isSearchAvailable = body.dataRoot === 'ok';
      if (body.dataRoot !== 'ok') status.errors.push(`data root ${body.dataRoot}`);
      if (body.redis !== 'ok') status.errors.push(`redis ${body.redis}: pages served uncached`);
    } catch (error) {
      status.errors.push(error instanceof DeltaApiError ? error.detail : String(error));
    }
    return status;
  }

  async search(query: string, options: SearchOptions = {}): Promise<SearchResult[]> {
    checkFilters(options.filters);
    const window = pageWindow(options);
    const sort = sortParam(options, this.columns);
    if (!this.connected) await this.connect();
    const rows: Row[] = [];
    let last: GovlabPage | null = null;
    for (let page = window.firstPage; page <= window.lastPage; page++) {
      last = await this.fetchPage(query, page, window.pageSize, sort);
      rows.push(...last.items);
      if (last.items.length < window.pageSize) break; // past the last visible row
    }
    if (last === null) return [];
    const { items: _items, ...meta } = last;
    this.lastPage = meta;
    const context = { dataset: this.dataset, format: this.format, resultType: this.resultType };
    return rows
      .slice(window.skip, window.skip + window.limit)
      .map((row) => toSearchResult(row, last, this.columns, context));
  }

  /** One raw `GET /search` page (already filtered and masked by the server). */
  async fetchPage(
    query: string,
    page: number,
    pageSize: number,
    sort?: string,
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
    return normalizePage((await this.request(`/search?${params}`, true)) as GovlabWirePage);
  }

  private async request(path: string, authorised: boolean): Promise<unknown> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (authorised) headers.Authorization = `Bearer ${this.token}`;
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.url}${path}`, {
        headers,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const reason = cause?.code ?? cause?.message ?? (error as Error).message ?? String(error);
      throw new DeltaApiError(0, `cannot reach ${this.url}: ${reason}`);
    }
    if (!response.ok) {
      let detail = response.statusText || 'request failed';
      try {
        const body = (await response.json()) as { detail?: unknown };
        if (body && body.detail !== undefined) detail = String(body.detail);
      } catch {
        // not JSON: keep the status text
      }
      throw new DeltaApiError(response.status, detail);
    }
    return response.json();
  }
}

// ------------------------------------------------------------------ config (fromConfig)

/** smart-search's config file, with the `delta-api` database type. */
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

/** `${VAR}` and `${VAR:-default}` from the environment, as smart-search's templates use. */
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
 * the file over GOVLAB_URL / GOVLAB_TOKEN. */
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
      "a 'cache' section is refused for delta-api: smart-search's cache key has no " +
        "principal in it, so one caller could be served another's masked page; the govlab " +
        'server already caches pages per principal',
    );
  }
  const fromFile = (value: string | undefined) => (value ? expandEnv(value, env) : '');
  return new DeltaApiProvider({
    url: overrides.url || fromFile(connection.url) || env.GOVLAB_URL || DEFAULT_URL,
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

/** The `SmartSearchFactory.fromConfig()` of this provider: read a smart-search config file. */
export function fromConfig(path: string, overrides: FromConfigOverrides = {}): DeltaApiProvider {
  const config = JSON.parse(readFileSync(path, 'utf8')) as DeltaApiConfigFile;
  return providerFromConfigObject(config, overrides);
}

/** What `new SmartSearch(...)` is given: the provider, no cache provider, caching off. */
export function smartSearchConfig(provider: DatabaseProvider) {
  return { database: provider, fallback: 'database' as const, cacheConfig: { enabled: false } };
}

type SmartSearchLike = {
  search(
    query: string,
    options?: SearchOptions,
  ): Promise<{ results: SearchResult[]; performance: { errors?: string[] } }>;
};

/** `new SmartSearch(smartSearchConfig(provider))` when @bilgrami/smart-search is installed. */
export async function trySmartSearch(provider: DatabaseProvider): Promise<SmartSearchLike | null> {
  const packageName = '@bilgrami/smart-search'; // not on the npm registry: optional
  try {
    const module = (await import(packageName)) as {
      SmartSearch?: new (config: unknown) => SmartSearchLike;
    };
    return module.SmartSearch ? new module.SmartSearch(smartSearchConfig(provider)) : null;
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------ live example

const USAGE = `usage: npx tsx search-delta-redis.ts [--config smart-search.config.json]
       [--url URL] [--token TOKEN] [--query TEXT] [--limit N] [--offset N]
       [--dataset healthcare|ecommerce|financial] [--format delta|parquet|iceberg]
       [--exact-total] [--json]
URL and TOKEN default to GOVLAB_URL and GOVLAB_TOKEN (mint one with \`govlab token\`).
A total past the server's count limit (GOVLAB_COUNT_LIMIT, 10,000) is a lower bound,
printed as N+; --exact-total (or options.exactTotal in the config) counts every match.`;

export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      url: { type: 'string' },
      token: { type: 'string' },
      query: { type: 'string', short: 'q', default: '' },
      limit: { type: 'string', default: '5' },
      offset: { type: 'string', default: '0' },
      dataset: { type: 'string' },
      format: { type: 'string' },
      'exact-total': { type: 'boolean' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const overrides: FromConfigOverrides = {
    url: values.url,
    token: values.token,
    dataset: values.dataset as Dataset | undefined,
    format: values.format as Format | undefined,
    // Only when given, so the config file's options.exactTotal applies otherwise.
    exactTotal: values['exact-total'] ? true : undefined,
  };
  const configPath = values.config ?? 'smart-search.config.json';
  let provider: DeltaApiProvider;
  try {
    provider =
      values.config || existsSync(configPath)
        ? fromConfig(resolve(configPath), overrides)
        : providerFromConfigObject(
            { database: { type: 'delta-api', connection: {} } },
            overrides,
          );
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    console.error(USAGE);
    return 2;
  }

  const options: SearchOptions = { limit: Number(values.limit), offset: Number(values.offset) };
  try {
    const health = await provider.checkHealth();
    await provider.connect();
    const smart = await trySmartSearch(provider);
    let results: SearchResult[];
    if (smart) {
      const answer = await smart.search(values.query ?? '', options);
      if (answer.performance.errors?.length) {
        throw new Error(`SmartSearch: ${answer.performance.errors.join('; ')}`);
      }
      results = answer.results;
    } else {
      results = await provider.search(values.query ?? '', options);
    }
    const meta = provider.lastPage;
    if (values.json) {
      const via = smart ? 'SmartSearch' : 'provider';
      console.log(JSON.stringify({ health, via, meta, results }));
      return 0;
    }
    console.log(
      `${provider.url}: connected in ${health.latency} ms, search ` +
        `${health.isSearchAvailable ? 'available' : 'unavailable'}` +
        (health.errors.length ? ` (${health.errors.join('; ')})` : ''),
    );
    console.log(`via ${smart ? 'SmartSearch (no client cache)' : 'DeltaApiProvider directly'}`);
    if (meta) {
      console.log(
        `${provider.dataset}/${provider.format} q=${JSON.stringify(values.query)} as role ` +
          `${meta.role}: total ${describeTotal(meta)}, page ${meta.page} ` +
          `(pageSize ${meta.pageSize}), cache ${meta.strategy?.cache}, ` +
          `table v${meta.tableVersion}, policy ${meta.policyVersion}`,
      );
      console.log(`maskedFields: ${meta.maskedFields.join(', ') || '(none)'}`);
    }
    for (const result of results) {
      const parts = [result.subtitle, result.category, result.createdAt].filter(Boolean);
      console.log(`  ${result.id.padStart(8)}  ${result.title}  [${parts.join(' | ')}]`);
      if (result.description !== undefined) console.log(`            ${result.description}`);
    }
    return 0;
  } catch (error) {
    const status = error instanceof DeltaApiError ? ` (status ${error.status})` : '';
    console.error(`FAILED${status}: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    await provider.disconnect();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().then(
    (code) => process.exit(code),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
