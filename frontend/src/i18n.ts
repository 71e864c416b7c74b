// All user-facing strings in Chinese and English; Chinese by default when the browser language is zh*.

export type Lang = "zh" | "en";

const LANG_KEY = "fraudnet.lang";

const STRINGS: Record<string, { zh: string; en: string }> = {
  "app.title": { zh: "fraudnet 医保基金监管 · 关系图谱", en: "fraudnet · fund supervision link chart" },
  "app.brand": { zh: "fraudnet 医保反欺诈", en: "fraudnet" },
  "nav.queue": { zh: "线索队列", en: "Lead queue" },
  "nav.logout": { zh: "退出", en: "Log out" },
  "nav.lang": { zh: "English", en: "中文" },
  "role.admin": { zh: "管理员", en: "admin" },
  "role.investigator": { zh: "稽核员", en: "investigator" },
  "role.viewer": { zh: "只读", en: "viewer" },

  "login.title": { zh: "登录", en: "Sign in" },
  "login.help": {
    zh: "粘贴由 `fraudnet tokens create` 生成的访问令牌。令牌只保存在本标签页（sessionStorage）。",
    en: "Paste an access token created by `fraudnet tokens create`. It is kept in this tab only (sessionStorage).",
  },
  "login.token": { zh: "访问令牌", en: "Access token" },
  "login.submit": { zh: "登录", en: "Sign in" },
  "login.bad": { zh: "令牌无效或已过期", en: "The token is invalid or expired" },
  "login.unreachable": { zh: "无法连接服务：{msg}", en: "Cannot reach the service: {msg}" },

  "queue.title": { zh: "线索队列", en: "Lead queue" },
  "queue.kind": { zh: "类型", en: "Kind" },
  "queue.kind.all": { zh: "全部类型", en: "All kinds" },
  "queue.severity": { zh: "预警等级", en: "Severity" },
  "queue.status": { zh: "状态", en: "Status" },
  "queue.status.all": { zh: "全部状态", en: "Any status" },
  "queue.institution": { zh: "机构编码", en: "Institution code" },
  "queue.person": { zh: "人员编号", en: "Person no." },
  "queue.date_from": { zh: "起始日期", en: "From" },
  "queue.date_to": { zh: "截止日期", en: "To" },
  "queue.min_amount": { zh: "最低涉嫌金额", en: "Min. amount" },
  "queue.sort": { zh: "排序", en: "Sort" },
  "queue.apply": { zh: "筛选", en: "Apply" },
  "queue.reset": { zh: "重置", en: "Reset" },
  "queue.total": { zh: "共 {n} 条线索", en: "{n} leads" },
  "queue.empty": { zh: "没有符合条件的线索", en: "No leads match these filters" },
  "queue.prev": { zh: "上一页", en: "Previous" },
  "queue.next": { zh: "下一页", en: "Next" },
  "queue.page": { zh: "第 {page} / {pages} 页", en: "Page {page} of {pages}" },
  "sort.-priority": { zh: "优先级（有模型时按预期追回金额）", en: "Priority (expected recovery once a model is trained)" },
  "sort.-expected_recovery": { zh: "预期追回金额 高→低", en: "Expected recovery, high first" },
  "sort.-score": { zh: "分值 高→低", en: "Score, high first" },
  "sort.score": { zh: "分值 低→高", en: "Score, low first" },
  "sort.-severity": { zh: "等级 红→黄", en: "Severity, red first" },
  "sort.-amount_at_risk": { zh: "金额 高→低", en: "Amount, high first" },
  "sort.-period_end": { zh: "最近发生", en: "Most recent" },
  "sort.period_start": { zh: "最早发生", en: "Oldest first" },

  "col.lead_id": { zh: "线索编号", en: "Lead id" },
  "col.kind": { zh: "类型", en: "Kind" },
  "col.severity": { zh: "等级", en: "Severity" },
  "col.score": { zh: "分值", en: "Score" },
  "col.members": { zh: "涉及对象", en: "Members" },
  "col.evidence": { zh: "证据", en: "Evidence" },
  "col.amount": { zh: "涉嫌金额(元)", en: "Amount at risk (¥)" },
  "col.period": { zh: "时间范围", en: "Period" },
  "col.status": { zh: "状态", en: "Status" },
  "col.assignee": { zh: "承办人", en: "Assignee" },
  "col.explanation": { zh: "说明", en: "Explanation" },

  "sev.red": { zh: "红色预警", en: "Red" },
  "sev.orange": { zh: "橙色预警", en: "Orange" },
  "sev.yellow": { zh: "黄色预警", en: "Yellow" },
  "sev.short.red": { zh: "红", en: "Red" },
  "sev.short.orange": { zh: "橙", en: "Orange" },
  "sev.short.yellow": { zh: "黄", en: "Yellow" },

  "status.new": { zh: "新线索", en: "New" },
  "status.reviewing": { zh: "核查中", en: "Reviewing" },
  "status.confirmed": { zh: "已确认", en: "Confirmed" },
  "status.dismissed": { zh: "已排除", en: "Dismissed" },
  "status.referred": { zh: "已移送", en: "Referred" },

  "kind.collusion_ring": { zh: "合谋团伙（同进同出）", en: "Collusion ring" },
  "kind.card_skimming": { zh: "盗刷社保卡聚集", en: "Card skimming cluster" },
  "kind.drug_resale": { zh: "药品倒卖链", en: "Drug resale chain" },
  "kind.rule": { zh: "规则：{rule}", en: "Rule: {rule}" },
  "kind.anomaly": { zh: "同类异常：{type}", en: "Peer anomaly: {type}" },
  "rule.split_admission": { zh: "分解住院", en: "split admission" },
  "rule.bed_hanging": { zh: "挂床住院", en: "bed-hanging" },
  "rule.impersonation": { zh: "冒名就医", en: "impersonation" },
  "rule.sex_incompatible": { zh: "性别与诊断不符", en: "sex-incompatible diagnosis" },
  "rule.age_incompatible": { zh: "年龄与诊断不符", en: "age-incompatible diagnosis" },
  "rule.gender_age_mismatch": { zh: "性别/年龄与诊疗不符", en: "sex/age-incompatible diagnosis" },
  "rule.over_quantity": { zh: "超量开药", en: "over-quantity dispensing" },
  "rule.over_standard_price": { zh: "超标准收费", en: "over-standard price" },
  "rule.duplicate_charge": { zh: "重复收费", en: "duplicate charges" },
  "rule.discharge_growth": { zh: "出院人次异常增长", en: "discharge growth" },

  "type.Person": { zh: "参保人", en: "Person" },
  "type.Practitioner": { zh: "医师/药师", en: "Practitioner" },
  "type.Institution": { zh: "医疗机构", en: "Institution" },
  "type.Pharmacy": { zh: "定点药店", en: "Pharmacy" },
  "type.Drug": { zh: "药品", en: "Drug" },
  "type.Phone": { zh: "电话", en: "Phone" },
  "type.Address": { zh: "地址", en: "Address" },
  "type.Visit": { zh: "就诊", en: "Visit" },
  "type.Lead": { zh: "线索", en: "Lead" },

  "lead.back": { zh: "← 返回队列", en: "← Back to queue" },
  "lead.summary": { zh: "线索概要", en: "Summary" },
  "lead.figures": { zh: "关键指标", en: "Figures" },
  "lead.members": { zh: "涉及对象", en: "Members" },
  "lead.persons": { zh: "参保人", en: "Persons" },
  "lead.practitioners": { zh: "医师/药师", en: "Practitioners" },
  "lead.institutions": { zh: "机构/药店", en: "Institutions" },
  "lead.evidence": { zh: "证据就诊记录", en: "Evidence visits" },
  "lead.evidence_n": { zh: "证据就诊记录（{n} 条）", en: "Evidence visits ({n})" },
  "lead.print_more": { zh: "仅列出前 {shown} 条，共 {n} 条", en: "First {shown} of {n} shown" },
  "lead.case": { zh: "案件处理", en: "Case" },
  "lead.status_change": { zh: "变更状态", en: "Change status" },
  "lead.comment": { zh: "说明（可选）", en: "Comment (optional)" },
  "lead.save_status": { zh: "保存状态", en: "Save status" },
  "lead.assign": { zh: "指派", en: "Assign" },
  "lead.notes": { zh: "备注", en: "Notes" },
  "lead.add_note": { zh: "添加备注", en: "Add note" },
  "lead.note_ph": { zh: "记录核查情况……", en: "What did you find…" },
  "lead.history": { zh: "处理记录", en: "History" },
  "lead.readonly": { zh: "只读角色：不能变更案件", en: "Read-only role: case actions are not available" },
  "lead.saved": { zh: "已保存", en: "Saved" },
  "lead.print": { zh: "打印线索摘要", en: "Print lead summary" },
  "lead.printed_at": { zh: "打印时间 {at}，操作人 {user}", en: "Printed {at} by {user}" },
  "lead.score": { zh: "分值", en: "Score" },
  "lead.amount": { zh: "涉嫌金额", en: "Amount at risk" },
  "lead.period": { zh: "时间范围", en: "Period" },
  "lead.assignee": { zh: "承办人", en: "Assignee" },
  "lead.none": { zh: "无", en: "none" },

  "ev.mdtrt_id": { zh: "就诊ID", en: "Visit id" },
  "ev.begntime": { zh: "开始时间", en: "Start" },
  "ev.endtime": { zh: "结束时间", en: "End" },
  "ev.med_type": { zh: "医疗类别", en: "Type" },
  "ev.psn_no": { zh: "人员编号", en: "Person" },
  "ev.fixmedins_code": { zh: "机构", en: "Institution" },
  "ev.atddr_no": { zh: "医师", en: "Practitioner" },
  "ev.dise": { zh: "诊断", en: "Diagnosis" },
  "ev.medfee_sumamt": { zh: "医疗费总额", en: "Total fee" },
  "ev.fund_pay_sumamt": { zh: "基金支付", en: "Fund paid" },

  "med.11": { zh: "普通门诊", en: "outpatient" },
  "med.13": { zh: "急诊", en: "emergency" },
  "med.14": { zh: "门诊慢特病", en: "chronic outpatient" },
  "med.21": { zh: "普通住院", en: "inpatient" },
  "med.25": { zh: "异地住院", en: "out-of-area inpatient" },
  "med.41": { zh: "药店购药", en: "pharmacy purchase" },

  "chart.layout": { zh: "布局", en: "Layout" },
  "chart.layout.fcose": { zh: "力导向（团伙）", en: "Force (rings)" },
  "chart.layout.dagre": { zh: "层次（链条）", en: "Hierarchy (chains)" },
  "chart.layout.breadthfirst": { zh: "广度优先", en: "Breadth-first" },
  "chart.layout.concentric": { zh: "同心圆", en: "Concentric" },
  "chart.fit": { zh: "适应窗口", en: "Fit" },
  "chart.types": { zh: "显示类型", en: "Show types" },
  "chart.time": { zh: "时间窗", en: "Time window" },
  "chart.time_all": { zh: "全部时间", en: "All time" },
  "chart.search": { zh: "查找图中对象或搜索新增…", en: "Find in chart or search to add…" },
  "chart.search_server": { zh: "搜索库中实体", en: "Search all entities" },
  "chart.add": { zh: "加入", en: "Add" },
  "chart.in_chart": { zh: "已在图中", en: "in chart" },
  "chart.no_match": { zh: "图中无匹配", en: "No match in chart" },
  "chart.no_results": { zh: "没有结果", en: "No results" },
  "chart.export": { zh: "导出", en: "Export" },
  "chart.png": { zh: "PNG 图片", en: "PNG image" },
  "chart.svg": { zh: "SVG 矢量图", en: "SVG vector" },
  "chart.graphml": { zh: "GraphML（Gephi/i2/Bloom）", en: "GraphML (Gephi/i2/Bloom)" },
  "chart.evidence": { zh: "突出证据", en: "Highlight evidence" },
  "chart.unhide": { zh: "显示全部隐藏", en: "Unhide all" },
  "chart.counts": { zh: "{nodes} 个节点，{edges} 条关系（显示 {vn}/{ve}）", en: "{nodes} nodes, {edges} edges ({vn}/{ve} shown)" },
  "chart.truncated": { zh: "结果已截断（达到节点上限）", en: "Truncated (node cap reached)" },
  "chart.legend": { zh: "图例", en: "Legend" },
  "chart.loading": { zh: "加载中…", en: "Loading…" },

  "node.expand": { zh: "展开邻居", en: "Expand" },
  "node.collapse": { zh: "收起", en: "Collapse" },
  "node.hide": { zh: "隐藏", en: "Hide" },
  "node.pin": { zh: "固定位置", en: "Pin" },
  "node.unpin": { zh: "取消固定", en: "Unpin" },
  "node.path_start": { zh: "设为路径起点", en: "Path from here" },
  "node.path_to": { zh: "查找路径：{from} → 此处", en: "Paths: {from} → here" },
  "node.paths_found": { zh: "找到 {n} 条最短路径", en: "{n} shortest paths found" },
  "node.no_path": { zh: "4 步内没有路径", en: "No path within 4 hops" },
  "node.added": { zh: "新增 {n} 个节点", en: "{n} nodes added" },

  "edge.title": { zh: "关系详情", en: "Relationship" },
  "edge.visits": { zh: "次数", en: "Visits" },
  "edge.amount": { zh: "金额", en: "Amount" },
  "edge.first": { zh: "首次", en: "First" },
  "edge.last": { zh: "最近", en: "Last" },
  "entity.title": { zh: "对象详情", en: "Entity" },
  "entity.hint": { zh: "点击图中节点查看详情；双击展开邻居。", en: "Click a node for details; double-click to expand." },
  "entity.profile": { zh: "基本信息", en: "Profile" },
  "entity.stats": { zh: "活动统计", en: "Activity" },
  "entity.risk": { zh: "风险", en: "Risk" },
  "entity.risk_score": { zh: "风险分值", en: "Risk score" },
  "entity.timeline": { zh: "就诊时间线", en: "Visit timeline" },
  "entity.leads": { zh: "相关线索", en: "Leads involving it" },
  "entity.top_kinds": { zh: "主要线索类型", en: "Top kinds" },
  "entity.no_leads": { zh: "无相关线索", en: "No leads" },
  "entity.no_visits": { zh: "无就诊记录", en: "No visits" },

  "err.generic": { zh: "出错了：{msg}", en: "Something went wrong: {msg}" },
  "err.forbidden": { zh: "无权限执行此操作", en: "You are not allowed to do this" },
  "err.not_found": { zh: "未找到", en: "Not found" },
};

function detectLang(): Lang {
  const saved = localStorage.getItem(LANG_KEY);
  if (saved === "zh" || saved === "en") return saved;
  return (navigator.language || "").toLowerCase().startsWith("zh") ? "zh" : "en";
}

let current: Lang = detectLang();
const listeners: Array<() => void> = [];

export function lang(): Lang {
  return current;
}

export function setLang(next: Lang): void {
  current = next;
  localStorage.setItem(LANG_KEY, next);
  document.documentElement.lang = next === "zh" ? "zh-CN" : "en";
  document.title = t("app.title");
  for (const fn of listeners) fn();
}

export function onLangChange(fn: () => void): void {
  listeners.push(fn);
}

/** Translate a key, filling `{name}` placeholders; unknown keys come back as themselves. */
export function t(key: string, params: Record<string, string | number> = {}): string {
  const entry = STRINGS[key];
  let text = entry ? entry[current] : key;
  for (const [k, v] of Object.entries(params)) text = text.split(`{${k}}`).join(String(v));
  return text;
}

export function has(key: string): boolean {
  return key in STRINGS;
}

/** Human label of a lead kind: `collusion_ring`, `rule:<id>`, `anomaly:<type>`. */
export function kindLabel(kind: string): string {
  if (has(`kind.${kind}`)) return t(`kind.${kind}`);
  const [family, rest = ""] = kind.split(":", 2);
  if (family === "rule") return t("kind.rule", { rule: has(`rule.${rest}`) ? t(`rule.${rest}`) : rest });
  if (family === "anomaly") return t("kind.anomaly", { type: has(`type.${rest}`) ? t(`type.${rest}`) : rest });
  return kind;
}

export function medTypeLabel(code: string | null | undefined): string {
  if (!code) return "";
  return has(`med.${code}`) ? `${code} ${t(`med.${code}`)}` : code;
}

document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
