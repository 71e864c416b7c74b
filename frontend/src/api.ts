// HTTP client for the fraudnet API (/api): bearer token from sessionStorage, typed answers.

const TOKEN_KEY = "fraudnet.token";

export interface GNode {
  id: string;
  type: string;
  key: string;
  label: string;
  props: Record<string, unknown>;
  risk: number | null;
}

export interface GEdge {
  id: string;
  type: string;
  source: string;
  target: string;
  visits: number;
  amount: number;
  first: string | null;
  last: string | null;
  props: Record<string, unknown>;
}

export interface Subgraph {
  nodes: GNode[];
  edges: GEdge[];
  truncated: boolean;
}

export interface LeadSummary {
  lead_id: string;
  kind: string;
  severity: string;
  score: number;
  persons: string[];
  practitioners: string[];
  institutions: string[];
  evidence_count: number;
  amount_at_risk: number;
  period_start: string | null;
  period_end: string | null;
  explanation_zh: string;
  explanation_en: string;
  status: string;
  assignee: string | null;
  response_due_at?: string | null;
  overdue?: boolean | null;
}

export interface CaseFile {
  casefile_id: string;
  lead_id: string;
  title: string;
  owner: string;
  created_at: string;
  updated_at: string;
  latest_version: number;
  shared_with: string[];
  version?: number;
  state?: import("./chart").ChartState;
  versions?: Array<{ version: number; saved_by: string; saved_at: string; comment: string | null }>;
}

export interface EvidenceVisit {
  mdtrt_id: string;
  begntime: string | null;
  endtime: string | null;
  med_type: string | null;
  psn_no: string | null;
  fixmedins_code: string | null;
  atddr_no: string | null;
  dise_codg: string | null;
  dise_name: string | null;
  medfee_sumamt: number | null;
  fund_pay_sumamt: number | null;
}

export interface LeadDetail extends LeadSummary {
  evidence: string[];
  features: Record<string, unknown>;
  notes: Array<{ user: string; text: string; at: string }>;
  history: Array<{ user: string; at: string; from: string | null; to: string; comment?: string | null }>;
  evidence_visits: EvidenceVisit[];
}

export interface Page<T> {
  items: T[];
  total: number;
  page: number;
  page_size: number;
}

export interface EntityInfo {
  profile: { id: string; type: string; key: string; label: string; props: Record<string, unknown>;
    stats: Record<string, unknown> };
  risk: { score: number | null; leads: number; amount_at_risk: number; top_kinds: unknown };
}

export class ApiError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}

export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

let onUnauthorized: () => void = () => {};
export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

type Query = Record<string, string | number | boolean | null | undefined>;

function qs(params: Query): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === "") continue;
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  }
  return parts.length ? `?${parts.join("&")}` : "";
}

/** A file answer (exports) as a Blob with the server's file name. */
async function requestFile(method: string, path: string, body?: unknown): Promise<{ blob: Blob; name: string }> {
  const headers: Record<string, string> = {};
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!res.ok) {
    if (res.status === 401) onUnauthorized();
    throw new ApiError(res.status, `${res.status} ${res.statusText}`);
  }
  const cd = res.headers.get("Content-Disposition") ?? "";
  const name = /filename="([^"]+)"/.exec(cd)?.[1] ?? "fraudnet-export";
  return { blob: await res.blob(), name };
}

async function request<T>(method: string, path: string, body?: unknown, token = getToken()): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try {
      const data = await res.json();
      if (data && typeof data.message === "string") message = data.message;
      else if (data && typeof data.detail === "string") message = data.detail;
      else if (data && data.detail) message = JSON.stringify(data.detail);
    } catch {
      /* not JSON */
    }
    if (res.status === 401) onUnauthorized();
    throw new ApiError(res.status, message);
  }
  return (await res.json()) as T;
}

const enc = encodeURIComponent;

export const api = {
  health: () => request<{ status: string; version: string; store: string }>("GET", "/api/health"),
  me: (token?: string) => request<{ user: string; role: string }>("GET", "/api/me", undefined, token ?? getToken()),
  leads: (params: Query) => request<Page<LeadSummary>>("GET", `/api/leads${qs(params)}`),
  leadKinds: () => request<unknown>("GET", "/api/leads/kinds"),
  lead: (id: string) => request<LeadDetail>("GET", `/api/leads/${enc(id)}`),
  leadGraph: (id: string) => request<Subgraph>("GET", `/api/leads/${enc(id)}/graph?include_visits=true`),
  leadChart: (id: string) => request<Subgraph>("GET", `/api/charts/lead/${enc(id)}`),
  caseFiles: (leadId?: string) => request<CaseFile[]>("GET", `/api/casefiles${qs({ lead_id: leadId })}`),
  caseFile: (id: string, version?: number) => request<CaseFile>("GET", `/api/casefiles/${enc(id)}${qs({ version })}`),
  createCaseFile: (body: { lead_id: string; title: string; state: unknown; comment?: string | null }) =>
    request<CaseFile>("POST", "/api/casefiles", body),
  saveCaseVersion: (id: string, body: { state: unknown; comment?: string | null; title?: string | null }) =>
    request<CaseFile>("POST", `/api/casefiles/${enc(id)}/versions`, body),
  shareCaseFile: (id: string, users: string[]) =>
    request<CaseFile>("POST", `/api/casefiles/${enc(id)}/share`, { users }),
  exportCaseFile: (id: string, format: string, version?: number) =>
    requestFile("GET", `/api/casefiles/${enc(id)}/export${qs({ format, version })}`),
  exportChart: (body: { lead_id: string; title: string; state: unknown; format: string }) =>
    requestFile("POST", "/api/casefiles/export", body),
  setStatus: (id: string, status: string, comment?: string) =>
    request<unknown>("POST", `/api/leads/${enc(id)}/status`, { status, comment: comment || null }),
  assign: (id: string, assignee: string | null) =>
    request<unknown>("POST", `/api/leads/${enc(id)}/assign`, { assignee }),
  addNote: (id: string, text: string) => request<unknown>("POST", `/api/leads/${enc(id)}/notes`, { text }),
  entity: (nid: string) => request<EntityInfo>("GET", `/api/entities/${enc(nid)}`),
  timeline: (nid: string, limit = 100) => request<unknown>("GET", `/api/entities/${enc(nid)}/timeline${qs({ limit })}`),
  entityLeads: (nid: string) => request<unknown>("GET", `/api/entities/${enc(nid)}/leads`),
  ego: (nid: string, params: Query) => request<Subgraph>("GET", `/api/graph/ego/${enc(nid)}${qs(params)}`),
  subgraph: (nodeIds: string[], includeVisits = false) =>
    request<Subgraph>("POST", "/api/graph/subgraph", { node_ids: nodeIds, include_visits: includeVisits }),
  paths: (source: string, target: string, maxDepth = 4) =>
    request<{ paths: Array<{ nodes: string[]; edges: GEdge[] }>; nodes: GNode[] }>("GET",
      `/api/graph/paths${qs({ source, target, max_depth: maxDepth })}`),
  search: (q: string, limit = 20) => request<unknown>("GET", `/api/search${qs({ q, limit })}`),
};

/** Lists may come bare or wrapped (`{items: [...]}`, `{events: [...]}`, ...): take the first array found. */
export function asList<T>(data: unknown, ...keys: string[]): T[] {
  if (Array.isArray(data)) return data as T[];
  if (data && typeof data === "object") {
    const obj = data as Record<string, unknown>;
    for (const k of [...keys, "items", "results", "events", "leads", "kinds", "timeline"]) {
      if (Array.isArray(obj[k])) return obj[k] as T[];
    }
  }
  return [];
}
