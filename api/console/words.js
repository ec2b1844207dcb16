// Names for people: the wire's step and tool names are for programs ("scam_db"); the analyst
// reads these. The percentages are the wire's: what a step's progress message carries.

export const STAGES = [
  { step: 'entity_extraction', label: 'Reading the message', percent: 10 },
  { step: 'scam_db', label: 'Checking scam database', percent: 30 },
  { step: 'exa_search', label: 'Searching the web for reports', percent: 45 },
  { step: 'domain_reputation', label: 'Checking domain reputation', percent: 60 },
  { step: 'phone_validator', label: 'Validating phone number', percent: 75 },
  { step: 'reasoning', label: 'Weighing the evidence', percent: 90 },
  { step: 'completed', label: 'Done', percent: 100 },
];

const OTHER_STEPS = {
  failed: 'Failed',
  cancelled: 'Cancelled',
  reviewed: 'Reviewed by an analyst',
  connected: 'Connected',
  remote_tool: 'Asking a connected tool',
};

const TOOLS = {
  scam_database: 'Scam database',
  web_search: 'Web search',
  domain_reputation: 'Domain reputation',
  phone_validator: 'Phone validator',
};

const EVENTS = {
  TaskSubmitted: 'Submitted',
  AnalysisStarted: 'Analysis started',
  EntitiesExtracted: 'Entities found',
  ToolCallStarted: 'Tool called',
  ToolCallCompleted: 'Tool answered',
  ToolCallFailed: 'Tool failed',
  ProgressReported: 'Progress',
  VerdictReached: 'Verdict reached',
  TaskCompleted: 'Completed',
  TaskFailed: 'Failed',
  TaskCancelled: 'Cancelled',
  VerdictReviewed: 'Reviewed',
};

export function stepName(step) {
  const stage = STAGES.find((s) => s.step === step);
  return stage ? stage.label : OTHER_STEPS[step] || step || '—';
}

export function toolName(tool) {
  return TOOLS[tool] || tool || '';
}

export function eventName(type) {
  return EVENTS[type] || type;
}

/** "scam_database_match" → "scam database match": reason and signal codes, readable. */
export function codeName(code) {
  return String(code || '').replace(/_/g, ' ');
}
