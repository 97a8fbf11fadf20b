/**
 * Unit tests of DeltaApiProvider's mapping, against a stubbed fetch (no server): smart-search
 * options -> API request, API page -> SearchResult[], API errors -> thrown DeltaApiError.
 * The live run against a real govlab API is in tests/test_examples.py.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';

import {
  type DatabaseProvider,
  DeltaApiError,
  DeltaApiProvider,
  FALLBACK_WINDOW_MS,
  type GovlabPage,
  MemoryCache,
  PrincipalScopedCache,
  type GovlabWirePage,
  type Row,
  describeTotal,
  expandEnv,
  fromConfig,
  main,
  normalizePage,
  pageWindow,
  providerFromConfigObject,
  smartSearchConfig,
  sortParam,
  DEFAULT_COLUMNS,
} from './search-delta-redis.ts';

const URL_ = 'http://govlab.test:8000';
const HERE = fileURLToPath(new URL('.', import.meta.url));

interface Call {
  url: URL;
  headers: Record<string, string>;
}

function row(id: number, extra: Partial<Row> = {}): Row {
  return {
    patient_id: id,
    name: '*****',
    ssn: null,
    dob: '1984',
    address: 'Springfield',
    region: 'NE',
    condition: 'asthma',
    clinician_id: 'C007',
    admitted_at: '2024-07-11T02:41:39',
    notes: '*****',
    insurance_id: null,
    ...extra,
  };
}

function page(items: Row[], overrides: Partial<GovlabPage> = {}): GovlabPage {
  return {
    items,
    page: 1,
    pageSize: items.length || 1,
    total: 597,
    totalExact: true,
    maskedFields: ['address', 'dob', 'insurance_id', 'name', 'notes', 'ssn'],
    sort: 'patient_id',
    tableVersion: 3,
    policyVersion: '7e35558600bc',
    role: 'business_user',
    strategy: { cache: 'miss', engine: 'delta', pushdown: true },
    tookMs: 4.2,
    ...overrides,
  };
}

function json(status: number, body: unknown, statusText = ''): Response {
  return new Response(JSON.stringify(body), {
    status,
    statusText,
    headers: { 'Content-Type': 'application/json' },
  });
}

const HEALTHY = { status: 'ok', redis: 'ok', dataRoot: 'ok', demoAuth: false };

/** A fetch that answers /health with `health` and /search with `onSearch(url)`. */
function stubFetch(
  onSearch: (url: URL) => Response,
  health: () => Response = () => json(200, HEALTHY),
) {
  const calls: Call[] = [];
  const fetch = vi.fn(async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    calls.push({ url, headers: { ...(init?.headers as Record<string, string>) } });
    return url.pathname === '/health' ? health() : onSearch(url);
  });
  return { fetch: fetch as unknown as typeof globalThis.fetch, calls, mock: fetch };
}

/** Serves `total` rows (patient_id 1..total) paginated like the API. */
function pagedServer(total: number) {
  return stubFetch((url) => {
    const number = Number(url.searchParams.get('page'));
    const size = Number(url.searchParams.get('pageSize'));
    const first = (number - 1) * size + 1;
    const ids = Array.from({ length: size }, (_, i) => first + i).filter((id) => id <= total);
    return json(200, page(ids.map((id) => row(id)), { page: number, pageSize: size, total }));
  });
}

function provider(fetch: typeof globalThis.fetch, token = 'token-a') {
  return new DeltaApiProvider({ url: `${URL_}/`, token, fetch });
}

/** A smart-search config file with this content, in a fresh temporary directory. */
function configFile(content: unknown): string {
  const path = join(mkdtempSync(join(tmpdir(), 'delta-api-')), 'config.json');
  writeFileSync(path, JSON.stringify(content));
  return path;
}

const searches = (calls: Call[]) => calls.filter((c) => c.url.pathname === '/search');
const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('pagination: smart-search limit/offset -> govlab page/pageSize', () => {
  it('maps an aligned window to one page', () => {
    expect(pageWindow({ limit: 10, offset: 20 })).toEqual({
      pageSize: 10,
      firstPage: 3,
      lastPage: 3,
      skip: 0,
      limit: 10,
    });
    expect(pageWindow()).toMatchObject({ pageSize: 20, firstPage: 1, lastPage: 1 });
  });

  it('covers a misaligned window with the pages around it', () => {
    expect(pageWindow({ limit: 10, offset: 5 })).toMatchObject({
      pageSize: 10,
      firstPage: 1,
      lastPage: 2,
      skip: 5,
    });
  });

  it('splits a window larger than the API page limit', () => {
    expect(pageWindow({ limit: 450, offset: 0 })).toMatchObject({
      pageSize: 200,
      firstPage: 1,
      lastPage: 3,
    });
  });

  it('refuses nonsense', () => {
    expect(() => pageWindow({ limit: 0 })).toThrow(RangeError);
    expect(() => pageWindow({ offset: -1 })).toThrow(RangeError);
    expect(() => pageWindow({ limit: 2.5 })).toThrow(RangeError);
  });

  it('sends page and pageSize, dataset, format and q', async () => {
    const server = pagedServer(100);
    const results = await provider(server.fetch).search('asthma', { limit: 10, offset: 20 });
    const [call] = searches(server.calls);
    expect(searches(server.calls)).toHaveLength(1);
    expect(Object.fromEntries(call.url.searchParams)).toEqual({
      dataset: 'healthcare',
      format: 'delta',
      q: 'asthma',
      page: '3',
      pageSize: '10',
    });
    expect(results.map((r) => Number(r.id))).toEqual(range(21, 30));
  });

  it('slices a misaligned window out of two pages', async () => {
    const server = pagedServer(100);
    const results = await provider(server.fetch).search('', { limit: 10, offset: 5 });
    expect(searches(server.calls).map((c) => c.url.searchParams.get('page'))).toEqual(['1', '2']);
    expect(results.map((r) => Number(r.id))).toEqual(range(6, 15));
  });

  it('stops at the last visible row', async () => {
    const server = pagedServer(250);
    const results = await provider(server.fetch).search('', { limit: 1000 });
    expect(searches(server.calls).map((c) => c.url.searchParams.get('pageSize'))).toEqual([
      '200',
      '200',
    ]);
    expect(results).toHaveLength(250);
  });
});

describe('rows -> SearchResult', () => {
  it('puts masked fields and the served row in metadata', async () => {
    const served = row(169, { name: '*****', notes: '*****' });
    const server = stubFetch(() => json(200, page([served])));
    const p = provider(server.fetch);
    const [result] = await p.search('asthma', { limit: 1 });
    expect(result).toMatchObject({
      id: '169',
      type: 'custom',
      title: '*****', // the name column, masked by the server for this role
      subtitle: 'asthma',
      description: '*****',
      category: 'NE',
      createdAt: '2024-07-11T02:41:39',
      matchType: 'custom',
      relevanceScore: 1,
    });
    expect(result.metadata).toEqual({
      row: served,
      maskedFields: ['address', 'dob', 'insurance_id', 'name', 'notes', 'ssn'],
      dataset: 'healthcare',
      format: 'delta',
      role: 'business_user',
      total: 597,
      totalExact: true,
      page: 1,
      pageSize: 1,
      tableVersion: 3,
      policyVersion: '7e35558600bc',
      cache: 'miss',
    });
    const { page: summary } = await p.searchPage('asthma', { limit: 1 });
    expect(summary).toEqual({
      role: 'business_user',
      total: 597,
      totalExact: true,
      page: 1,
      pageSize: 1,
      maskedFields: ['address', 'dob', 'insurance_id', 'name', 'notes', 'ssn'],
      tableVersion: 3,
      policyVersion: '7e35558600bc',
      cache: 'miss',
    });
  });

  it('leaves optional fields out when the column is null, and honours a column map', async () => {
    const server = stubFetch(() => json(200, page([row(7, { notes: null })])));
    const p = new DeltaApiProvider({
      url: URL_,
      token: 't',
      fetch: server.fetch,
      columns: { title: 'condition', subtitle: 'clinician_id' },
    });
    const [result] = await p.search('', { limit: 1 });
    expect(result.title).toBe('asthma');
    expect(result.subtitle).toBe('C007');
    expect(result).not.toHaveProperty('description');
  });

  it('returns [] for an empty page', async () => {
    const server = stubFetch(() => json(200, page([], { total: 0 })));
    expect(await provider(server.fetch).search('nothing-matches', {})).toEqual([]);
  });

  it('has default column maps for every dataset', () => {
    expect(Object.keys(DEFAULT_COLUMNS).sort()).toEqual(['ecommerce', 'financial', 'healthcare']);
  });
});

describe('total and totalExact: a lower bound past the count limit', () => {
  /** A page as a server from before the count limit sends it: no `totalExact`. */
  function oldServerPage(items: Row[], overrides: Partial<GovlabPage> = {}): GovlabWirePage {
    const { totalExact: _dropped, ...body } = page(items, overrides);
    return body;
  }

  it('passes totalExact: false through to metadata and the page summary', async () => {
    const server = stubFetch(() => json(200, page([row(1)], { total: 10_000, totalExact: false })));
    const p = provider(server.fetch);
    const { results, page: summary } = await p.searchPage('', { limit: 1 });
    expect(results[0].metadata).toMatchObject({ total: 10_000, totalExact: false });
    expect(summary).toMatchObject({ total: 10_000, totalExact: false });
  });

  it('reads a missing totalExact (an older server) as exact', async () => {
    const body = oldServerPage([row(1)]);
    expect(body).not.toHaveProperty('totalExact');
    const server = stubFetch(() => json(200, body));
    const p = provider(server.fetch);
    const { results, page: summary } = await p.searchPage('', { limit: 1 });
    expect(results[0].metadata).toMatchObject({ total: 597, totalExact: true });
    expect(summary).toMatchObject({ total: 597, totalExact: true });
    expect(normalizePage(body).totalExact).toBe(true);
    expect(normalizePage({ ...body, totalExact: false }).totalExact).toBe(false);
  });

  it('keeps the last page\'s totalExact when a window spans pages', async () => {
    const server = stubFetch((url) => {
      const number = Number(url.searchParams.get('page'));
      const ids = [2 * number - 1, 2 * number];
      const overrides = { page: number, pageSize: 2, total: 9, totalExact: false };
      return json(200, page(ids.map((id) => row(id)), overrides));
    });
    const p = provider(server.fetch);
    const { results, page: summary } = await p.searchPage('', { limit: 2, offset: 1 });
    expect(results.map((r) => r.metadata?.totalExact)).toEqual([false, false]);
    expect(summary).toMatchObject({ page: 2, totalExact: false });
  });

  it('describes a lower bound as N+', () => {
    expect(describeTotal({ total: 10_000, totalExact: false })).toBe('10000+');
    expect(describeTotal({ total: 597, totalExact: true })).toBe('597');
    expect(describeTotal({ total: 597 })).toBe('597');
  });

  it('sends exactTotal=true only when the option is set', async () => {
    const server = pagedServer(30);
    await provider(server.fetch).search('asthma', { limit: 10 });
    const options = { url: URL_, token: 't', fetch: server.fetch };
    const exact = new DeltaApiProvider({ ...options, exactTotal: true });
    expect(exact.exactTotal).toBe(true);
    await exact.search('asthma', { limit: 10, offset: 5 }); // two pages: both ask
    const off = new DeltaApiProvider({ ...options, exactTotal: false });
    await off.search('asthma', { limit: 10 });
    expect(searches(server.calls).map((c) => c.url.searchParams.get('exactTotal'))).toEqual([
      null,
      'true',
      'true',
      null,
    ]);
    const [, asked] = searches(server.calls);
    expect(Object.fromEntries(asked.url.searchParams)).toEqual({
      dataset: 'healthcare',
      format: 'delta',
      q: 'asthma',
      page: '1',
      pageSize: '10',
      exactTotal: 'true',
    });
  });

  it('refuses an exactTotal that is not a boolean', () => {
    expect(
      () => new DeltaApiProvider({ url: URL_, token: 't', exactTotal: 'true' as never }),
    ).toThrow(/exactTotal must be true or false/);
  });
});

describe('sorting and filters', () => {
  const columns = DEFAULT_COLUMNS.healthcare;

  it('maps sortBy/sortOrder to sort', () => {
    expect(sortParam({}, columns)).toBeUndefined();
    expect(sortParam({ sortBy: 'relevance', sortOrder: 'desc' }, columns)).toBeUndefined();
    expect(sortParam({ sortBy: 'name' }, columns)).toBe('name');
    expect(sortParam({ sortBy: 'date', sortOrder: 'desc' }, columns)).toBe('-admitted_at');
    expect(sortParam({ sortBy: 'custom', filters: { custom: { sort: 'region' } } }, columns)).toBe(
      'region',
    );
    expect(() => sortParam({ sortBy: 'views' }, columns)).toThrow(DeltaApiError);
  });

  it('sends sort and refuses filters it cannot apply', async () => {
    const server = stubFetch(() => json(200, page([row(1)])));
    const p = provider(server.fetch);
    await p.search('', { sortBy: 'date', sortOrder: 'asc', limit: 1 });
    expect(searches(server.calls)[0].url.searchParams.get('sort')).toBe('admitted_at');
    await expect(p.search('', { filters: { category: ['NE'] } })).rejects.toThrow(
      /filters are not supported/,
    );
    expect(searches(server.calls)).toHaveLength(1);
  });
});

describe('errors -> a thrown Error with the status', () => {
  it.each([
    [401, 'invalid token'],
    [403, "role 'nobody' is not in the healthcare policy"],
    [404, "delta table 'healthcare' has not been seeded"],
    [422, 'cannot sort on masked column name'],
    [500, 'internal error'],
  ])('HTTP %i', async (status, detail) => {
    const server = stubFetch(() => json(status, { error: 'X', detail }));
    const error = await provider(server.fetch)
      .search('', {})
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeltaApiError);
    expect(error).toBeInstanceOf(Error);
    const message = `delta-api: HTTP ${status}: ${detail}`;
    expect(error).toMatchObject({ status, detail, message });
  });

  it('keeps the status text when the body is not JSON', async () => {
    const server = stubFetch(
      () => new Response('<html>bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }),
    );
    await expect(provider(server.fetch).search('', {})).rejects.toMatchObject({
      status: 502,
      detail: 'Bad Gateway',
    });
  });

  it('reports an unreachable server as status 0 from connect()', async () => {
    const fetch = vi.fn(async () => {
      throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
    }) as unknown as typeof globalThis.fetch;
    const p = provider(fetch);
    await expect(p.connect()).rejects.toMatchObject({ status: 0 });
    await expect(p.connect()).rejects.toThrow(/ECONNREFUSED/);
    expect(await p.isConnected()).toBe(false);
  });

  it('needs a url and a token', () => {
    expect(() => new DeltaApiProvider({ url: URL_, token: '' })).toThrow(/token/);
    expect(() => new DeltaApiProvider({ url: '', token: 't' })).toThrow(/url/);
  });
});

describe('connection and health', () => {
  it('connects through /health without sending the token there', async () => {
    const server = pagedServer(3);
    const p = provider(server.fetch, 'secret-token');
    expect(await p.isConnected()).toBe(false);
    await p.connect();
    expect(await p.isConnected()).toBe(true);
    await p.search('', { limit: 1 });
    const [health, search] = server.calls;
    expect(health.url.href).toBe(`${URL_}/health`);
    expect(health.headers.Authorization).toBeUndefined();
    expect(search.headers.Authorization).toBe('Bearer secret-token');
    await p.disconnect();
    expect(await p.isConnected()).toBe(false);
  });

  it('reports a healthy, a degraded and an unreachable API without throwing', async () => {
    const ok = await provider(stubFetch(() => json(200, page([]))).fetch).checkHealth();
    expect(ok).toMatchObject({
      status: 'healthy',
      isConnected: true,
      isSearchAvailable: true,
      errors: [],
      details: HEALTHY,
    });
    expect(ok.latency).toBeGreaterThanOrEqual(0);
    expect(ok.responseTime).toBe(ok.latency);
    expect(Date.parse(ok.timestamp ?? '')).not.toBeNaN();

    const degraded = await provider(
      stubFetch(
        () => json(200, page([])),
        () => json(200, { ...HEALTHY, status: 'degraded', redis: 'unreachable' }),
      ).fetch,
    ).checkHealth();
    expect(degraded).toMatchObject({ status: 'degraded', isConnected: true, isSearchAvailable: true });
    expect(degraded.errors?.join()).toMatch(/redis unreachable/);
    expect(degraded.message).toMatch(/^govlab API degraded: redis unreachable/);

    const down = await provider(
      stubFetch(
        () => json(200, page([])),
        () => {
          throw new TypeError('fetch failed');
        },
      ).fetch,
    ).checkHealth();
    expect(down).toMatchObject({
      status: 'unhealthy',
      isConnected: false,
      isSearchAvailable: false,
      latency: -1,
    });
  });
});

describe('one search call: its record, its time, its table version', () => {
  it("rethrows a client error on smart-search's fallback attempt without a request", async () => {
    let answers = 0;
    const server = stubFetch(() =>
      ++answers <= 2 ? json(401, { detail: 'invalid token' }) : json(200, page([row(1)])),
    );
    const p = provider(server.fetch);
    const options = { limit: 1 }; // smart-search passes one object to every attempt of a call
    await expect(p.search('q', options)).rejects.toMatchObject({ status: 401 });
    await expect(p.search('q', options)).rejects.toMatchObject({ status: 401 }); // the fallback
    expect(searches(server.calls)).toHaveLength(1);
    expect(p.outcome(options)).toMatchObject({ attempts: 2, error: { status: 401 } });
    // After its fallback, the same object is a new call: the server is asked again.
    await expect(p.search('q', options)).rejects.toMatchObject({ status: 401 });
    expect(searches(server.calls)).toHaveLength(2);
    // So is any call past the fallback window, and any other query or options object.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + FALLBACK_WINDOW_MS + 1);
      expect(await p.search('q', options)).toHaveLength(1);
    } finally {
      vi.useRealTimers();
    }
    expect(searches(server.calls)).toHaveLength(3);
    expect(p.outcome({ limit: 1 })).toBeUndefined();
  });

  it('sends a transient failure again and records what it recovered from', async () => {
    let answers = 0;
    const server = stubFetch(() =>
      ++answers === 1 ? json(503, { detail: 'restarting' }) : json(200, page([row(1)])),
    );
    const p = provider(server.fetch);
    const options = {};
    const error = await p.search('', options).catch((e: DeltaApiError) => e);
    expect(error).toMatchObject({ status: 503, retryable: true });
    expect(await p.search('', options)).toHaveLength(1);
    expect(p.outcome(options)).toMatchObject({
      attempts: 2,
      error: undefined,
      recovered: ['delta-api: HTTP 503: restarting'],
      page: { total: 597 },
    });
  });

  it('reads a multi-page window again when the table changed between its pages', async () => {
    let served = 0;
    const server = stubFetch((url) => {
      const number = Number(url.searchParams.get('page'));
      served += 1;
      const tableVersion = served === 1 ? 3 : 4; // a reseed lands after the first page
      const ids = [2 * number - 1, 2 * number];
      return json(200, page(ids.map((id) => row(id)), { page: number, pageSize: 2, tableVersion }));
    });
    const { results, page: summary } = await provider(server.fetch).searchPage('', {
      limit: 2,
      offset: 1,
    });
    expect(searches(server.calls).map((c) => c.url.searchParams.get('page'))).toEqual([
      '1',
      '2',
      '1',
      '2',
    ]);
    expect(summary.tableVersion).toBe(4);
    expect(results.map((r) => r.metadata?.tableVersion)).toEqual([4, 4]);
  });

  it('logs a DeltaApiError as one line, without a stack', () => {
    const error = new DeltaApiError(401, 'invalid token');
    expect(inspect(error)).toBe('DeltaApiError: delta-api: HTTP 401: invalid token');
    expect(inspect({ wrapped: error })).not.toMatch(/\n\s+at /);
  });
});

describe('no client-side cache unless a shared one is given, then scoped per principal', () => {
  it('asks the server every time, with the provider\'s own token', async () => {
    const server = pagedServer(50);
    const clinician = provider(server.fetch, 'clinician-token');
    const business = provider(server.fetch, 'business-token');
    await clinician.search('asthma', { limit: 5 });
    await business.search('asthma', { limit: 5 });
    await clinician.search('asthma', { limit: 5 });
    expect(searches(server.calls).map((c) => c.headers.Authorization)).toEqual([
      'Bearer clinician-token',
      'Bearer business-token',
      'Bearer clinician-token',
    ]);
  });

  it('builds SmartSearch without a cache provider and with caching off', () => {
    const p = provider(pagedServer(1).fetch);
    const config = smartSearchConfig(p);
    expect(config).toEqual({ database: p, fallback: 'database', cacheConfig: { enabled: false } });
    expect(config).not.toHaveProperty('cache');
    const asInterface: DatabaseProvider = p; // structurally smart-search's DatabaseProvider
    expect(asInterface.name).toBe('delta-api');
  });

  it('wraps a shared cache in a PrincipalScopedCache', () => {
    const p = provider(pagedServer(1).fetch);
    const shared = new MemoryCache();
    const config = smartSearchConfig(p, { sharedCache: shared });
    expect(config.cache).toBeInstanceOf(PrincipalScopedCache);
    expect(config.cache?.name).toBe('principal-scoped(memory)');
    expect(config.cacheConfig).toEqual({ enabled: true });
  });

  it('refuses a config with a cache section', () => {
    expect(() =>
      providerFromConfigObject({
        database: { type: 'delta-api', connection: { url: URL_, token: 't' } },
        cache: { type: 'redis', connection: { url: 'redis://localhost:6379' } },
      }),
    ).toThrow(/cache/);
  });
});

describe('fromConfig', () => {
  it('reads the shipped smart-search.config.json with GOVLAB_API_URL/GOVLAB_TOKEN', async () => {
    const server = pagedServer(5);
    const p = fromConfig(join(HERE, 'smart-search.config.json'), {
      env: { GOVLAB_API_URL: URL_, GOVLAB_TOKEN: 'env-token' },
      fetch: server.fetch,
    });
    expect(p).toMatchObject({ url: URL_, dataset: 'healthcare', format: 'delta' });
    expect(p.exactTotal).toBe(false);
    await p.search('', { limit: 2 });
    expect(searches(server.calls)[0].headers.Authorization).toBe('Bearer env-token');
    expect(searches(server.calls)[0].url.searchParams.has('exactTotal')).toBe(false);
  });

  it('defaults the url, lets overrides win, and requires a token', () => {
    const path = configFile({
      database: {
        type: 'delta-api',
        connection: { url: '${GOVLAB_API_URL:-http://127.0.0.1:8000}', token: '${GOVLAB_TOKEN}' },
        options: { dataset: 'financial', format: 'iceberg' },
      },
      search: { fallback: 'database' },
    });
    const defaulted = fromConfig(path, { env: { GOVLAB_TOKEN: 't' } });
    expect(defaulted).toMatchObject({
      url: 'http://127.0.0.1:8000',
      dataset: 'financial',
      format: 'iceberg',
    });
    expect(defaulted.columns.id).toBe('account_id');
    const overridden = fromConfig(path, {
      env: { GOVLAB_TOKEN: 't' },
      url: 'http://other:9000',
      format: 'parquet',
    });
    expect(overridden).toMatchObject({ url: 'http://other:9000', format: 'parquet' });
    expect(() => fromConfig(path, { env: {} })).toThrow(/token/);
  });

  it('carries options.exactTotal from the file to the request; an override wins', async () => {
    const path = configFile({
      database: {
        type: 'delta-api',
        connection: { url: URL_, token: '${GOVLAB_TOKEN}' },
        options: { dataset: 'healthcare', exactTotal: true },
      },
    });
    const server = pagedServer(5);
    const exact = fromConfig(path, { env: { GOVLAB_TOKEN: 't' }, fetch: server.fetch });
    expect(exact.exactTotal).toBe(true);
    await exact.search('asthma', { limit: 2 });
    const overridden = fromConfig(path, {
      env: { GOVLAB_TOKEN: 't' },
      exactTotal: false,
      fetch: server.fetch,
    });
    await overridden.search('asthma', { limit: 2 });
    expect(searches(server.calls).map((c) => c.url.searchParams.get('exactTotal'))).toEqual([
      'true',
      null,
    ]);
    expect(() =>
      providerFromConfigObject({
        database: {
          type: 'delta-api',
          connection: { token: 't' },
          options: { exactTotal: 'yes' as never },
        },
      }),
    ).toThrow(/exactTotal/);
  });

  it('refuses another database type, an unknown dataset or format', () => {
    expect(() =>
      providerFromConfigObject({ database: { type: 'supabase', connection: {} } } as never),
    ).toThrow(/delta-api/);
    const withOptions = (options: object) =>
      providerFromConfigObject({
        database: { type: 'delta-api', connection: { token: 't' }, options: options as never },
      });
    expect(() => withOptions({ format: 'csv' })).toThrow(/unknown format/);
    expect(() => withOptions({ dataset: 'x' })).toThrow(/unknown dataset/);
  });

  it('expands ${VAR} and ${VAR:-default}', () => {
    const env = { A: 'x', EMPTY: '' };
    expect(expandEnv('${A}/${B:-y}/${EMPTY:-z}/${B}', env)).toBe('x/y/z/');
  });
});

describe('the live example\'s output (main) against a stubbed fetch', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
  });

  async function runMain(args: string[], body: GovlabWirePage) {
    const server = stubFetch(() => json(200, body));
    vi.stubGlobal('fetch', server.fetch);
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((line: unknown) => void lines.push(String(line)));
    vi.spyOn(console, 'error').mockImplementation((line: unknown) => void lines.push(String(line)));
    // env: {}: the output is the same with or without smart-search, required or not
    const code = await main(['--url', URL_, '--token', 't', '--query', 'asthma', ...args], {
      env: {},
    });
    return { code, out: lines.join('\n'), calls: searches(server.calls) };
  }

  it('prints a lower bound as N+ and an exact total as N', async () => {
    const bound = await runMain([], page([row(1)], { total: 10_000, totalExact: false }));
    expect(bound.code).toBe(0);
    expect(bound.out).toMatch(/as role business_user: total 10000\+, page 1/);
    expect(bound.calls[0].url.searchParams.has('exactTotal')).toBe(false);

    const { totalExact: _dropped, ...old } = page([row(1)], { total: 597 });
    const exact = await runMain([], old);
    expect(exact.out).toMatch(/: total 597, page 1/);
  });

  it('sends exactTotal=true with --exact-total', async () => {
    const { code, out, calls } = await runMain(
      ['--exact-total'],
      page([row(1)], { total: 12_345, totalExact: true }),
    );
    expect(code).toBe(0);
    expect(calls[0].url.searchParams.get('exactTotal')).toBe('true');
    expect(out).toMatch(/: total 12345, page 1/);
  });
});
