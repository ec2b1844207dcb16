// Each tool's answer, for people: what the scam database said, which web pages came back,
// which look-alike domain and why, what the phone number is. The raw event stays one click away.

import { fixed, h, millis, when } from './dom.js';
import { codeName, toolName } from './words.js';

const MAX_PAGES = 5;
const LOOKALIKE = new Set(['lookalike_brand', 'brand_embedded', 'idn']);
const PROVIDERS = { local: 'local reports', exa: 'Exa web search' };

/**
 * The evidence cards of a task, from its timeline: one per tool call that answered or failed for
 * good. `cite(seq, text)` makes a link to an event in the timeline.
 */
export function evidenceCards(timeline, cite) {
  const inputs = new Map();
  const cards = [];
  for (const entry of timeline) {
    const data = entry.data || {};
    if (entry.event_type === 'ToolCallStarted' && !inputs.has(data.call_id)) {
      inputs.set(data.call_id, data.input || {});
    } else if (entry.event_type === 'ToolCallCompleted') {
      const read = data.step === 'remote_tool' ? remoteTool(data.tool) : READERS[data.tool] || unknownTool;
      cards.push(card(entry, cite, read(data.output || {}, inputs.get(data.call_id) || {})));
    } else if (entry.event_type === 'ToolCallFailed' && !data.will_retry) {
      cards.push(card(entry, cite, failed(data)));
    }
  }
  return cards;
}

function card(entry, cite, { title, body, tone }) {
  const data = entry.data || {};
  return h(
    'article',
    { class: `evidence-card ${tone || ''}`, dataset: { tool: data.tool || '', seq: String(entry.seq) } },
    h(
      'h3',
      {},
      h('span', { class: 'tool-name' }, toolName(data.tool)),
      ' ',
      h('span', { class: 'card-title' }, title),
    ),
    body,
    h(
      'p',
      { class: 'card-foot muted' },
      data.duration_ms ? `answered in ${millis(data.duration_ms)} · ` : '',
      cite(entry.seq, `event #${entry.seq} in the timeline`),
    ),
    h(
      'details',
      { class: 'raw' },
      h('summary', {}, `Raw event #${entry.seq} (${entry.event_type})`),
      h('pre', {}, JSON.stringify(entry.data, null, 2)),
    ),
  );
}

function scamDatabase(output, input) {
  const matches = (output.matches || []).filter((m) => m && typeof m === 'object');
  const asked = `${input.value || 'the value'}${input.kind ? ` (${input.kind})` : ''}`;
  if (!matches.length) {
    return { title: `${asked}: not in the scam database`, body: null, tone: 'quiet' };
  }
  const items = matches.map((m) => {
    const count = Number(m.report_count) || 0;
    const times = count === 1 ? 'once' : `${count} times`;
    const asserted = m.asserted && typeof m.asserted === 'object' ? m.asserted : null;
    return h(
      'li',
      {},
      h('code', {}, m.value),
      ` reported ${times} as “${m.category || 'scam'}”`,
      m.scope ? ` · ${m.scope === 'global' ? 'global' : "tenant's own"} indicator` : '',
      m.source ? ` from ${m.source}` : '',
      asserted ? ` · asserted by ${asserted.actor} of ${asserted.tenant}, ${when(asserted.at)}` : '',
      m.last_seen ? ` · last seen ${when(m.last_seen)}` : '',
    );
  });
  return { title: `${asked}: known to the scam database`, body: h('ul', { class: 'facts-list' }, items), tone: 'alarm' };
}

function webSearch(output, input) {
  const results = (output.results || []).filter((r) => r && typeof r === 'object');
  const provider = PROVIDERS[output.provider] || output.provider || 'the web';
  const query = input.query ? ` for “${input.query}”` : '';
  const count = `${results.length} page${results.length === 1 ? '' : 's'}`;
  if (!results.length) return { title: `searched ${provider}${query}: nothing found`, body: null, tone: 'quiet' };
  // Addresses are shown as text, never as links: they come from pages about scams.
  const pages = results.slice(0, MAX_PAGES).map((r) =>
    h(
      'li',
      { class: 'page' },
      h('strong', {}, r.title || '(untitled)'),
      r.url ? h('code', { class: 'url' }, r.url) : null,
      r.snippet ? h('span', { class: 'snippet muted' }, r.snippet) : null,
    ),
  );
  const more = results.length > MAX_PAGES ? h('p', { class: 'muted' }, `and ${results.length - MAX_PAGES} more (raw event)`) : null;
  return { title: `searched ${provider}${query}: ${count}`, body: [h('ul', { class: 'pages' }, pages), more], tone: 'warn' };
}

function signalList(signals) {
  const items = (signals || [])
    .filter((s) => s && typeof s === 'object')
    .map((s) =>
      h(
        'li',
        { class: LOOKALIKE.has(s.code) ? 'signal lookalike' : 'signal', dataset: { code: s.code || '' } },
        h('span', { class: 'signal-code' }, LOOKALIKE.has(s.code) ? 'look-alike' : codeName(s.code)),
        ' ',
        s.detail || '',
        typeof s.weight === 'number' ? h('span', { class: 'muted' }, ` (+${fixed(s.weight)})`) : '',
      ),
    );
  return items.length ? h('ul', { class: 'facts-list' }, items) : null;
}

function domainReputation(output) {
  const risk = Number(output.risk) || 0;
  const name = output.domain || 'the domain';
  if (output.popular) {
    return { title: `${name}: a well-known site (rank ${output.rank}), risk ${fixed(risk)}`, body: null, tone: 'quiet' };
  }
  const registered = output.registered_domain && output.registered_domain !== output.domain ? ` (registered as ${output.registered_domain})` : '';
  const body = signalList(output.signals);
  return { title: `${name}${registered}: risk ${fixed(risk)}`, body: body || h('p', { class: 'muted' }, 'Nothing unusual about the name.'), tone: risk >= 0.5 ? 'alarm' : risk > 0 ? 'warn' : 'quiet' };
}

function phoneValidator(output) {
  const risk = Number(output.risk) || 0;
  const what = [output.valid === false ? 'not a valid number' : output.number_type || 'number', output.region ? `in ${output.region}` : '', output.carrier ? `(${output.carrier})` : ''].filter(Boolean).join(' ');
  return { title: `${output.number || 'the number'}: ${what}, risk ${fixed(risk)}`, body: signalList(output.signals), tone: risk >= 0.5 ? 'alarm' : risk > 0 ? 'warn' : 'quiet' };
}

// A connected (MCP) tool answers with a risk and signals about the entity it was asked about.
function remoteTool(tool) {
  return (output, input) => {
    const risk = Number(output.risk) || 0;
    const about = input.value ? ` on ${input.value}` : '';
    const body = signalList(output.signals) || h('p', { class: 'muted' }, 'No signals.');
    return { title: `${tool}${about}: risk ${fixed(risk)}`, body, tone: risk >= 0.5 ? 'alarm' : risk > 0 ? 'warn' : 'quiet' };
  };
}

function failed(data) {
  const how = data.timed_out ? 'timed out' : `failed: ${data.error}`;
  const body = h('p', {}, `After ${data.attempt || 1} attempt(s) it ${how}. Its evidence is missing, so the verdict's confidence is lower.`);
  return { title: 'did not answer', body, tone: 'alarm' };
}

function unknownTool(output) {
  return { title: 'answered', body: h('p', { class: 'muted' }, `${Object.keys(output).length} fields; see the raw event.`) };
}

const READERS = {
  scam_database: scamDatabase,
  web_search: webSearch,
  domain_reputation: domainReputation,
  phone_validator: phoneValidator,
};
