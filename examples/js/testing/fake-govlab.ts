/**
 * A small fake of govlab's HTTP API for tests that run the real smart-search: a real HTTP
 * server on 127.0.0.1 answering `GET /health` and `GET /search` like govlab (shapes,
 * statuses, per-principal rows and masks, table and policy versions), whose failures,
 * delays and versions a test controls, and which records every request it gets.
 *
 * Tokens are JWT-shaped and signed with an HMAC the fake checks, so a token that copies
 * another principal's claims without the key is refused (401) as govlab would refuse it.
 */

import { createHmac } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const KEY = 'fake-govlab-key';
export const ROWS = 30;

export interface Claims {
  sub: string;
  role: string;
  attrs: Record<string, unknown>;
  exp?: number;
}

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function sign(body: string): string {
  return createHmac('sha256', KEY).update(body).digest('base64url');
}

/** A token the fake accepts for these claims (expiring in an hour unless `exp` is set). */
export function mintToken(claims: Claims): string {
  const exp = claims.exp ?? Math.floor(Date.now() / 1000) + 3600;
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ ...claims, exp })}`;
  return `${body}.${sign(body)}`;
}

/** The same claims with a signature the fake does not accept. */
export function forgeToken(claims: Claims): string {
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ ...claims, exp: 4102444800 })}`;
  return `${body}.${sign('something else')}`;
}

function verify(header: string | undefined): Claims | null {
  const token = header?.startsWith('Bearer ') ? header.slice(7) : '';
  const [head, payload, signature] = token.split('.');
  if (!head || !payload || signature !== sign(`${head}.${payload}`)) return null;
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Claims;
  return claims.exp !== undefined && claims.exp * 1000 < Date.now() ? null : claims;
}

export interface SearchRequest {
  role: string | null;
  params: Record<string, string>;
}

/** A scripted answer for the next /search requests, in order. */
export type Scripted = { status: number; detail: string } | { hang: true };

export class FakeGovlab {
  url = '';
  tableVersion = 1;
  /** Each policy edit bumps it; from revision 2 on, business_user also sees `condition`
   * masked. */
  policyRevision = 1;
  health: Record<string, unknown> = { status: 'ok', redis: 'ok', dataRoot: 'ok' };
  /** Answers for the next /search requests, before any real page. */
  readonly script: Scripted[] = [];
  /** Delay (ms) before answering a /search whose q is the key. */
  readonly delays = new Map<string, number>();
  readonly searches: SearchRequest[] = [];
  private server: Server | null = null;

  get policyVersion(): string {
    return `policy${this.policyRevision}`;
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    this.server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this;
  }

  /** Closes the server, cutting any request it is still holding. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((done) => server.close(() => done()));
  }

  reseed(): void {
    this.tableVersion += 1;
  }

  editPolicy(): void {
    this.policyRevision += 1;
  }

  /** The masked fields of a role under the current policy revision. */
  maskedFields(role: string): string[] {
    if (role === 'clinician') return ['ssn'];
    const masked = ['name', 'ssn'];
    if (this.policyRevision >= 2) masked.unshift('condition');
    return masked;
  }

  /** Rows this principal may see, masked, matching q (on `condition`). */
  rows(claims: Claims, q: string): Record<string, unknown>[] {
    const masked = new Set(this.maskedFields(claims.role));
    const rows = [];
    for (let id = 1; id <= ROWS; id++) {
      const clinician = id % 2 === 0 ? 'C007' : 'C001';
      if (claims.role === 'clinician' && clinician !== claims.attrs.id) continue;
      const condition = id % 3 === 0 ? 'asthma' : 'diabetes';
      if (q && !condition.includes(q.toLowerCase())) continue;
      const raw: Record<string, unknown> = {
        patient_id: id,
        name: `Patient ${id}`,
        ssn: `900-00-${String(id).padStart(4, '0')}`,
        condition,
        region: 'NE',
        clinician_id: clinician,
        admitted_at: `2024-0${this.tableVersion}-01T00:00:00`, // changes with each reseed
        notes: `note ${id}`,
      };
      for (const column of masked) raw[column] = '*****';
      rows.push(raw);
    }
    return rows;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    if (url.pathname === '/health') return send(res, 200, this.health);
    if (url.pathname !== '/search') return send(res, 404, { detail: 'not found' });
    const claims = verify(req.headers.authorization);
    const params = Object.fromEntries(url.searchParams);
    this.searches.push({ role: claims?.role ?? null, params });
    const scripted = this.script.shift();
    if (scripted && 'hang' in scripted) return; // never answers; stop() cuts it
    if (scripted) return send(res, scripted.status, { error: 'X', detail: scripted.detail });
    if (!claims) return send(res, 401, { error: 'InvalidToken', detail: 'invalid token' });
    const delay = this.delays.get(params.q ?? '');
    if (delay) await new Promise((done) => setTimeout(done, delay));
    const page = Number(params.page ?? 1);
    const pageSize = Number(params.pageSize ?? 20);
    const matches = this.rows(claims, params.q ?? '');
    send(res, 200, {
      items: matches.slice((page - 1) * pageSize, page * pageSize),
      page,
      pageSize,
      total: matches.length,
      totalExact: true,
      maskedFields: this.maskedFields(claims.role),
      sort: 'patient_id',
      tableVersion: this.tableVersion,
      policyVersion: this.policyVersion,
      role: claims.role,
      strategy: { cache: 'miss', engine: 'fake', pushdown: true },
      tookMs: 1,
    });
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}
