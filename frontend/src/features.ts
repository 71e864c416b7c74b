// Readable lead features and entity fields: translated names with units, decoded codes (性别 女, 险种 城乡居民).

import { fmtValue, money, num } from "./dom";
import { has, lang, t } from "./i18n";

type Unit = "count" | "yuan" | "share" | "ratio" | "days" | "minutes" | "km" | "kmh" | "log10" | "p" | "text" | "list";

/** name (zh, en) and unit of the features detectors write; others are listed under technical details. */
const FEATURES: Record<string, [string, string, Unit]> = {
  group_size: ["团伙人数", "Group size", "count"],
  occasions_together: ["同进同出次数", "Times admitted together", "count"],
  batch_sizes: ["每批入院人数", "Persons per admission batch", "list"],
  co_admission_windows: ["同进窗口数", "Co-admission windows", "count"],
  stays: ["住院次数", "Stays", "count"],
  baseline_ratio: ["为偶然期望的倍数", "Times the chance expectation", "ratio"],
  observed_pair_occasions: ["观察到的成对同进次数", "Pair co-admissions observed", "count"],
  expected_pair_occasions: ["偶然期望的成对同进次数", "Pair co-admissions expected by chance", "count"],
  pair_max_together: ["两人最多同进次数", "Most times one pair was admitted together", "count"],
  repeat_surprise_log10: ["重复同进的偶然概率", "Chance of the repeats", "log10"],
  institution_admissions: ["机构入院人次", "Admissions at the institution", "count"],
  top_diagnosis: ["主要诊断", "Main diagnosis", "text"],
  top_diagnosis_share: ["主要诊断占比", "Share with the main diagnosis", "share"],
  los_cv: ["住院天数变异系数", "Length-of-stay variation (CV)", "ratio"],
  fee_cv: ["费用变异系数", "Fee variation (CV)", "ratio"],
  shared_phone_members: ["共用手机号人数", "Members sharing a phone", "count"],
  shared_address_members: ["共用地址人数", "Members sharing an address", "count"],
  occasion_dates: ["同进日期", "Occasion dates", "list"],
  cards: ["社保卡数", "Cards", "count"],
  visits: ["就诊次数", "Visits", "count"],
  episodes: ["集中刷卡时段数", "Bursts", "count"],
  operators: ["经办人", "Operators", "list"],
  largest_burst_cards: ["最大时段卡数", "Cards in the largest burst", "count"],
  largest_burst_minutes: ["最大时段时长", "Length of the largest burst", "minutes"],
  expected_cards: ["常态期望卡数", "Cards expected normally", "count"],
  far_stranger_share: ["外区且仅当天来此者占比", "Share of far strangers (that day only)", "share"],
  offhours_share: ["非营业时段占比", "Share off hours", "share"],
  same_basket_share: ["相同药品组合占比", "Share with identical baskets", "share"],
  co_swiped_cards: ["跨点交叉刷卡卡数", "Cards co-swiped across pharmacies", "count"],
  fills: ["取药次数", "Fills", "count"],
  prescribers: ["开方医师数", "Prescribers", "count"],
  institutions: ["取药机构数", "Dispensing institutions", "count"],
  excess_days: ["超出需要的供药天数", "Days of supply beyond need", "days"],
  excess_fills: ["超出需要的取药次数", "Fills beyond need", "count"],
  excess_fund: ["超量部分基金支付", "Fund paid for the excess", "yuan"],
  max_prescribers_in_window: ["90天内最多开方医师", "Most prescribers in 90 days", "count"],
  max_pharmacies_in_window: ["90天内最多取药机构", "Most dispensers in 90 days", "count"],
  p_value: ["偶然概率", "Chance (p)", "p"],
  expected_by_chance: ["全市偶然预期例数", "Cases expected by chance city-wide", "p"],
  false_discovery_rate: ["错误发现率（同等及更显著线索中偶然所占比例）", "False-discovery rate (share of chance among leads this surprising)", "p"],
  persons_tested: ["受检参保人及家庭数", "Persons and families tested", "count"],
  shared_keys: ["共用手机号/地址数", "Shared phones/addresses", "count"],
  leader: ["关联人（组织者）", "Leader", "text"],
  collectors: ["取药人", "Collectors", "list"],
  connectors: ["关联人", "Connectors", "list"],
  drugs: ["重点药品", "Key drugs", "list"],
  top_drug: ["主要药品", "Main drug", "text"],
  overselling_pharmacies: ["销量超采购量的药店", "Pharmacies selling more than they bought", "list"],
  inpatients: ["住院患者数", "Inpatients", "count"],
  readmissions: ["再入院次数", "Readmissions", "count"],
  patients: ["涉及患者数", "Patients", "count"],
  ratio: ["为基线的倍数", "Times the baseline", "ratio"],
  baseline_rate: ["基线比率", "Baseline rate", "share"],
  share: ["占比", "Share", "share"],
  median_gap_days: ["出入院间隔中位数", "Median gap", "days"],
  max_gap_days: ["最大间隔", "Largest gap", "days"],
  excess_amount: ["超出金额", "Excess amount", "yuan"],
  hit_fund: ["命中基金支付", "Fund paid on the hits", "yuan"],
  idle_days: ["无诊疗住院天数", "Days without treatment", "days"],
  idle_share: ["无诊疗天数占比", "Share of days without treatment", "share"],
  idle_stays: ["挂床住院次数", "Stays without treatment", "count"],
  hit_nights: ["命中住院夜数", "Nights flagged", "count"],
  impossible_pairs: ["不可能的就诊对数", "Impossible visit pairs", "count"],
  median_km: ["距离中位数", "Median distance", "km"],
  max_kmh: ["最高所需速度", "Highest speed needed", "kmh"],
  median_minutes: ["间隔中位数", "Median interval", "minutes"],
  over_visits: ["超量就诊次数", "Over-quantity visits", "count"],
  max_ratio: ["最高超量倍数", "Highest ratio to the limit", "ratio"],
  top_item: ["主要项目", "Main item", "text"],
  overcharge: ["超标准收费金额", "Overcharge", "yuan"],
  over_lines: ["超标准收费明细数", "Lines over the price cap", "count"],
  duplicate_amount: ["重复收费金额", "Duplicate amount", "yuan"],
  duplicate_visits: ["重复收费就诊次数", "Visits with duplicates", "count"],
  growth: ["增长倍数", "Growth", "ratio"],
  months: ["异常月份", "Months flagged", "text"],
  flagged_months: ["异常月份数", "Months flagged", "count"],
  visits_after_death: ["死亡后就诊次数", "Visits after death", "count"],
  death_date: ["死亡日期", "Date of death", "text"],
  first_days_after: ["死亡后首次就诊天数", "Days from death to the first visit", "days"],
  mismatched_visits: ["不符就诊次数", "Mismatched visits", "count"],
  anomaly_score: ["异常分值", "Anomaly score", "ratio"],
  peers: ["同类机构数", "Peers", "count"],
  peer_group: ["同类分组", "Peer group", "text"],
  amount_at_risk: ["涉嫌金额", "Amount at risk", "yuan"],
  evidence_visits: ["证据就诊次数", "Evidence visits", "count"],
  overlapping_pairs: ["重叠住院对数", "Overlapping stay pairs", "count"],
  max_overlap_days: ["最长重叠天数", "Longest overlap", "days"],
};

function fmtUnit(v: unknown, unit: Unit): string {
  if (v === null || v === undefined || v === "") return "–";
  const n = Number(v);
  const zh = lang() === "zh";
  switch (unit) {
    case "yuan": return money(n);
    case "share": return `${num(n * 100, 1)}%`;
    case "ratio": return `${num(n, 2)}×`;
    case "days": return zh ? `${num(n, 1)} 天` : `${num(n, 1)} days`;
    case "minutes": return zh ? `${num(n, 1)} 分钟` : `${num(n, 1)} min`;
    case "km": return `${num(n, 1)} km`;
    case "kmh": return `${num(n, 0)} km/h`;
    case "log10": return `10^-${num(n, 1)}`;
    case "p": return n === 0 ? "0" : n < 0.001 ? n.toExponential(1) : num(n, 4);
    case "count": return num(n, Number.isInteger(n) ? 0 : Math.abs(n) < 1 ? 3 : 1);
    case "list": {
      if (!Array.isArray(v)) return fmtValue(v);
      // Long items (person numbers) one a line: joined by "、" they wrapped with the "、" alone on a line.
      const items = v.map((x) => fmtValue(x));
      return items.some((x) => x.length > 12) ? items.join("\n") : items.join("、");
    }
    default: return fmtValue(v);
  }
}

export interface FeatureRow {
  key: string;
  name: string;
  value: string;
  known: boolean;
}

/** The lead's features as rows: known ones translated with units (in the detector's order), then the rest. */
export function featureRows(features: Record<string, unknown>): FeatureRow[] {
  const rows: FeatureRow[] = [];
  for (const [k, raw] of Object.entries(features ?? {})) {
    const f = FEATURES[k];
    // Operators are written "institution|operator id": show "operator @ institution".
    const v = k === "operators" && Array.isArray(raw)
      ? raw.map((x) => String(x).split("|").reverse().join(" @ ")) : raw;
    if (f) rows.push({ key: k, name: lang() === "zh" ? f[0] : f[1], value: fmtUnit(v, f[2]), known: true });
    else rows.push({ key: k, name: k.replace(/_/g, " "), value: fmtValue(v), known: false });
  }
  return rows;
}

const CODED = new Set(["gend", "insutype", "fixmedins_type", "prac_psn_type", "mdtrt_cert_type", "list_type",
  "hosp_lv", "med_type"]);

/** A field's name in words (`gend` → 性别 / Sex). */
export function fieldName(k: string): string {
  return has(`field.${k}`) ? t(`field.${k}`) : k.replace(/_/g, " ");
}

/** A field's value decoded (`gend 2` → 女, `insutype 390` → 城乡居民基本医疗保险), codes kept beside words. */
export function fieldValue(k: string, v: unknown): string {
  if (v === null || v === undefined) return "";
  if (k === "med_type" && has(`med.${v}`)) return t(`med.${v}`);
  if (CODED.has(k) && has(`${k}.${v}`)) return `${t(`${k}.${v}`)} (${v})`;
  if (k === "role" && has(`role.${v}`)) return t(`role.${v}`);
  if (["amount", "medfee_sumamt", "fund_pay_sumamt", "fund_pay", "amount_at_risk"].includes(k)) return money(Number(v));
  if (k === "key_drug" || k === "evidence") return v ? (lang() === "zh" ? "是" : "yes") : (lang() === "zh" ? "否" : "no");
  return fmtValue(v);
}

/** Relationship name in words (`TREATED_BY` → 诊治 / treated by). */
export function relName(type: string): string {
  return has(`rel.${type}`) ? t(`rel.${type}`) : type.toLowerCase().replace(/_/g, " ");
}

/** Properties that are ids of no use to a reader (hashed keys) or repeated elsewhere. */
export const HIDDEN_PROPS = new Set(["hash", "key", "summary_zh", "summary_en", "visit_ids", "unit", "evidence",
  "certno_hash", "mob_hash", "addr_key"]);
