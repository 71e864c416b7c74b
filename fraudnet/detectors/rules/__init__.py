"""Rule screens (规则筛查) of the bureaus' rule base: one detector per rule and the rule catalogue."""

from __future__ import annotations

from dataclasses import dataclass

from fraudnet.detectors.rules.after_death import AfterDeathDetector
from fraudnet.detectors.rules.bed_hanging import BedHangingDetector
from fraudnet.detectors.rules.discharge_growth import DischargeGrowthDetector
from fraudnet.detectors.rules.duplicate_charge import DuplicateChargeDetector
from fraudnet.detectors.rules.gender_age_mismatch import GenderAgeMismatchDetector
from fraudnet.detectors.rules.impersonation import ImpersonationDetector
from fraudnet.detectors.rules.over_quantity import OverQuantityDetector
from fraudnet.detectors.rules.over_standard_price import OverStandardPriceDetector
from fraudnet.detectors.rules.overlapping_stays import OverlappingStaysDetector
from fraudnet.detectors.rules.split_admission import SplitAdmissionDetector

__all__ = ["RuleInfo", "RULES", "RULE_DETECTORS"]


@dataclass(frozen=True)
class RuleInfo:
    """One rule of the catalogue: id, names, the threshold it applies, its entity and source in bureau practice."""

    rule_id: str
    name_zh: str
    name_en: str
    entity: str
    threshold: str
    source: str

    @property
    def kind(self) -> str:
        return f"rule:{self.rule_id}"


RULES: tuple[RuleInfo, ...] = (
    RuleInfo("split_admission", "分解住院", "Split admission", "institution",
             "same patient readmitted to the same institution within 15 days of discharge with the same 3-char "
             "ICD-10 diagnosis; scheduled care set aside (Z49/Z51 dialysis, chemo- and radiotherapy sessions, "
             "day-case pairs ≤1 night, ≥4 back-to-back readmissions with regular days at home, CV ≤ 0.1, unless "
             "readmitted within a day); ≥3 patients discharged and readmitted together left to collusion_ring; the "
             "institution's readmissions vs its case mix × robust per-diagnosis city rates",
             "NHSA fund-supervision focus list (分解住院); common rule base: 同一疾病15日内再次入院"),
    RuleInfo("bed_hanging", "挂床住院", "Bed-hanging", "institution",
             "stay of ≥3 nights with ≥3 and ≥50% of its nights without any treatment fee line (bed, nursing, "
             "meals excluded)", "NHSA focus list (挂床住院); on-site checks of patients absent from the ward"),
    RuleInfo("impersonation", "冒名就医/盗刷", "Impersonation / card misuse", "person",
             "consecutive visits at institutions ≥3 km apart with less time between them (plus time-resolution "
             "slack) than the fastest travel needs (road 100 km/h; rail 350 km/h + 60 min; air 900 km/h + 150 min), "
             "or, without coordinates, in different cities within 60 minutes; certain evidence: one pair orange, "
             "pairs on ≥2 days or ≥5,000 yuan red",
             "NHSA focus list (冒名就医、盗刷医保凭证); big-data model of e-voucher misuse"),
    RuleInfo("after_death", "死亡后就医", "Care after death", "person",
             "a visit beginning on a day after the person's recorded death_date (psn_info, from civil-affairs "
             "data); certain evidence: one day of visits orange, ≥2 days or ≥5,000 yuan fund red",
             "NHSA focus list (冒用已死亡人员医保凭证); data sharing of death records with civil affairs (民政)"),
    RuleInfo("overlapping_stays", "同时住院", "Simultaneous inpatient stays", "person",
             "two inpatient stays of one person at different institutions overlapping by ≥24 h for certain "
             "(same-day transfers and same-institution overlaps excluded); certain evidence: one pair orange, "
             "≥2 days or ≥5,000 yuan red", "NHSA focus list (冒名住院、虚假住院); common rule base: 同一时间多处住院"),
    RuleInfo("gender_age_mismatch", "性别/年龄不符", "Sex/age-incompatible claim", "institution",
             "pregnancy/female-organ diagnoses or items for men, prostate/male items for women, perinatal "
             "diagnoses from age 2, obstetric diagnoses below 12 or above 60; pregnancy/delivery for a man and "
             "prostate/male genital care for a woman are certain evidence (one orange; ≥2 patient-days or "
             "≥5,000 yuan red when above the institution's slip rate)",
             "common rule base of the smart-monitoring system (智能监控规则: 性别限定、年龄限定)"),
    RuleInfo("over_quantity", "超量开药", "Over-quantity dispensing", "institution",
             "days of supply (prd_days; cnt when missing) above the catalogue's max_days_per_fill "
             "(30 chronic, 7 otherwise)", "prescription rules (门诊处方一般不超过7日用量，慢性病不超过30日); 超量开药"),
    RuleInfo("over_standard_price", "超标准收费", "Over-standard price", "institution",
             "unit price above pric_uplmt_amt (price at the ceiling allowed)",
             "price ceilings of the medical-service and drug catalogues; 超标准收费"),
    RuleInfo("duplicate_charge", "重复收费", "Duplicate charge", "institution",
             "same service or consumable item billed on two or more fee lines of one visit at the same fee time "
             "(drugs, sold as several packs, excluded)",
             "NHSA focus list (重复收费、串换收费)"),
    RuleInfo("discharge_growth", "出院人次异常增长", "Abnormal discharge growth", "institution",
             "a run of the latest 4 months' discharges vs the institution's median level of the earlier months "
             "(city seasonality within ±20%): +30% yellow, +50% orange, +100% red, when significant against "
             "Poisson noise; one month alone stays yellow",
             "bureau monitoring of institutions' discharge counts (出院人次增幅预警, 黄/橙/红)"),
)

RULE_DETECTORS: dict[str, type] = {
    "rule:split_admission": SplitAdmissionDetector,
    "rule:bed_hanging": BedHangingDetector,
    "rule:impersonation": ImpersonationDetector,
    "rule:after_death": AfterDeathDetector,
    "rule:overlapping_stays": OverlappingStaysDetector,
    "rule:gender_age_mismatch": GenderAgeMismatchDetector,
    "rule:over_quantity": OverQuantityDetector,
    "rule:over_standard_price": OverStandardPriceDetector,
    "rule:duplicate_charge": DuplicateChargeDetector,
    "rule:discharge_growth": DischargeGrowthDetector,
}
