"""The input data contract (shared/DATA_CONTRACT.md v1) as code: tables, fields, types, aliases, keys."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "FieldSpec",
    "TableSpec",
    "TABLES",
    "TABLE_ORDER",
    "MED_TYPES",
    "INPATIENT_MED_TYPES",
    "PHARMACY_MED_TYPES",
    "LIST_TYPES",
    "table_for_filename",
]

# Field types: "str" code/text (leading zeros kept), "date", "datetime", "money" (yuan, 2 places),
# "decimal" (quantities/prices), "int", "float".


@dataclass(frozen=True)
class FieldSpec:
    """One column of a contract table: canonical name, type, accepted aliases, whether required."""

    name: str
    type: str = "str"
    aliases: tuple[str, ...] = ()
    required: bool = False
    max_len: int | None = None
    zh: str = ""


@dataclass(frozen=True)
class TableSpec:
    """One contract table: canonical name, file-name aliases, key columns, fields."""

    name: str
    aliases: tuple[str, ...]
    required: bool
    key: tuple[str, ...]
    fields: tuple[FieldSpec, ...]
    zh: str = ""
    # Reference tables are upserted (latest wins); fact tables only ever gain new keys.
    reference: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)


F = FieldSpec

TABLES: dict[str, TableSpec] = {
    "psn_info": TableSpec(
        "psn_info", ("psn_info_b", "persons"), True, ("psn_no",),
        (
            F("psn_no", required=True, max_len=30, zh="人员编号"),
            F("psn_name", max_len=50, zh="姓名"),
            F("gend", max_len=6, zh="性别"),
            F("brdy", "date", zh="出生日期"),
            F("certno", max_len=50, zh="证件号码"),
            F("insutype", max_len=6, zh="险种类型"),
            F("insuplc_admdvs", max_len=6, zh="参保地医保区划"),
            F("mob", aliases=("tel",), max_len=50, zh="手机号"),
            F("live_addr", max_len=200, zh="居住地址"),
            F("live_admdvs", max_len=6, zh="居住地区划"),
            F("emp_name", max_len=200, zh="单位名称"),
            F("death_date", "date", aliases=("die_date",), zh="死亡日期"),
        ),
        zh="参保人员", reference=True,
    ),
    "medins_info": TableSpec(
        "medins_info", ("medins_info_b", "institutions"), True, ("fixmedins_code",),
        (
            F("fixmedins_code", aliases=("medins_code",), required=True, max_len=30, zh="定点医药机构编号"),
            F("fixmedins_name", aliases=("medins_name",), max_len=200, zh="名称"),
            F("fixmedins_type", max_len=6, zh="机构类型"),
            F("hosp_lv", max_len=6, zh="医院等级"),
            F("medins_natu", max_len=6, zh="机构性质"),
            F("admdvs", max_len=6, zh="所在医保区划"),
            F("aprv_bed_cnt", "int", zh="核定床位数"),
            F("lnt", "float", zh="经度"),
            F("lat", "float", zh="纬度"),
        ),
        zh="定点医药机构", reference=True,
    ),
    "prac_info": TableSpec(
        "prac_info", ("prac_psn_info", "practitioners"), False, ("prac_psn_code",),
        (
            F("prac_psn_code", required=True, max_len=20, zh="医保医师/药师代码"),
            F("prac_psn_name", max_len=50, zh="姓名"),
            F("prac_psn_type", max_len=6, zh="人员类别"),
            F("fixmedins_code", max_len=30, zh="执业机构"),
            F("dept_code", max_len=30, zh="科室编码"),
            F("dept_name", max_len=100, zh="科室名称"),
        ),
        zh="医保医师药师", reference=True,
    ),
    "mdtrt": TableSpec(
        "mdtrt", ("mdtrt_d", "visits"), True, ("mdtrt_id",),
        (
            F("mdtrt_id", required=True, max_len=30, zh="就诊ID"),
            F("psn_no", required=True, max_len=30, zh="人员编号"),
            F("fixmedins_code", required=True, max_len=30, zh="定点医药机构编号"),
            F("med_type", required=True, max_len=6, zh="医疗类别"),
            F("begntime", "datetime", required=True, zh="开始时间"),
            F("endtime", "datetime", zh="结束时间"),
            F("mdtrt_cert_type", max_len=3, zh="就诊凭证类型"),
            F("atddr_no", aliases=("dr_codg", "chfpdr_code"), max_len=30, zh="主诊医师代码"),
            F("dept_code", aliases=("adm_dept_codg",), max_len=30, zh="科室"),
            F("dise_codg", aliases=("dscg_maindiag_code",), max_len=30, zh="主诊断编码"),
            F("dise_name", max_len=300, zh="主诊断名称"),
            F("insuplc_admdvs", max_len=6, zh="参保地区划"),
            F("opter_id", aliases=("opter",), max_len=30, zh="经办人"),
            F("vali_flag", max_len=3, zh="有效标志"),
        ),
        zh="就诊信息",
    ),
    "setl": TableSpec(
        "setl", ("setl_d", "settlements"), True, ("setl_id",),
        (
            F("setl_id", required=True, max_len=30, zh="结算ID"),
            F("mdtrt_id", required=True, max_len=30, zh="就诊ID"),
            F("psn_no", required=True, max_len=30, zh="人员编号"),
            F("fixmedins_code", max_len=30, zh="定点医药机构编号"),
            F("setl_time", "datetime", zh="结算时间"),
            F("medfee_sumamt", "money", required=True, zh="医疗费总额"),
            F("hifp_pay", "money", zh="统筹基金支出"),
            F("fund_pay_sumamt", "money", zh="基金支付总额"),
            F("acct_pay", "money", zh="个人账户支出"),
            F("psn_cash_pay", "money", aliases=("cash_payamt",), zh="个人现金支出"),
            F("mdtrt_cert_type", max_len=3, zh="就诊凭证类型"),
            F("refd_setl_flag", max_len=3, zh="退费结算标志"),
            F("vali_flag", max_len=3, zh="有效标志"),
        ),
        zh="结算信息",
    ),
    "fee_list": TableSpec(
        "fee_list", ("fee_list_d", "fee_details"), True, ("mdtrt_id", "feedetl_sn"),
        (
            F("feedetl_sn", required=True, max_len=30, zh="费用明细流水号"),
            F("mdtrt_id", required=True, max_len=30, zh="就诊ID"),
            F("psn_no", max_len=30, zh="人员编号"),
            F("setl_id", max_len=30, zh="结算ID"),
            F("fee_ocur_time", "datetime", zh="费用发生时间"),
            F("hilist_code", aliases=("med_list_codg",), required=True, max_len=50, zh="医保目录编码"),
            F("hilist_name", max_len=200, zh="医保目录名称"),
            F("list_type", max_len=6, zh="目录类别"),
            F("cnt", "decimal", zh="数量"),
            F("pric", "decimal", zh="单价"),
            F("det_item_fee_sumamt", "money", required=True, zh="明细项目费用总额"),
            F("bilg_dr_codg", aliases=("bilg_dr_code",), max_len=30, zh="开单医生代码"),
            F("bilg_dept_codg", max_len=30, zh="开单科室"),
            F("prd_days", "decimal", zh="周期天数"),
            F("vali_flag", max_len=3, zh="有效标志"),
        ),
        zh="费用明细",
    ),
    "hilist": TableSpec(
        "hilist", ("hilist_b", "catalogue"), False, ("hilist_code",),
        (
            F("hilist_code", required=True, max_len=50, zh="医保目录编码"),
            F("hilist_name", max_len=200, zh="名称"),
            F("list_type", max_len=6, zh="目录类别"),
            F("pric_uplmt_amt", "decimal", zh="最高限价"),
            F("max_days_per_fill", "decimal", zh="单次最大取药天数"),
            F("key_drug_flag", max_len=3, zh="重点监测药品"),
        ),
        zh="医保目录", reference=True,
    ),
    "phar_inv": TableSpec(
        "phar_inv", ("inv_list", "pharmacy_stock"), False,
        ("fixmedins_code", "hilist_code", "inv_data_type", "occur_time", "cnt", "spler_name"),
        (
            F("fixmedins_code", required=True, max_len=30, zh="药店编号"),
            F("hilist_code", aliases=("med_list_codg",), required=True, max_len=50, zh="医保目录编码"),
            F("inv_data_type", required=True, max_len=3, zh="进销存类型"),
            F("cnt", "decimal", aliases=("purc_retn_cnt", "sel_retn_cnt", "inv_cnt"), required=True, zh="数量"),
            F("occur_time", "datetime", aliases=("purc_retn_stoin_time", "sel_retn_time", "invdate"),
              required=True, zh="发生时间"),
            F("spler_name", max_len=200, zh="供应商"),
        ),
        zh="药店进销存",
    ),
}

TABLE_ORDER: tuple[str, ...] = (
    "medins_info", "prac_info", "psn_info", "hilist", "mdtrt", "setl", "fee_list", "phar_inv",
)

# 医疗类别 (med_type) codes of the national platform; rows with other codes are quarantined.
MED_TYPES: dict[str, str] = {
    "11": "普通门诊", "12": "门诊挂号", "13": "急诊", "14": "门诊慢特病", "15": "特药",
    "16": "中医特色门诊", "19": "其他门诊", "21": "普通住院", "22": "外伤住院", "23": "转外诊治住院",
    "24": "急诊转住院", "25": "异地住院", "26": "单病种住院", "28": "日间手术", "29": "其他住院",
    "41": "定点药店购药", "51": "生育门诊", "52": "生育住院", "53": "计划生育手术费",
    "9901": "其他",
}
INPATIENT_MED_TYPES: frozenset[str] = frozenset({"21", "22", "23", "24", "25", "26", "28", "29", "52"})
PHARMACY_MED_TYPES: frozenset[str] = frozenset({"41"})

LIST_TYPES: dict[str, str] = {
    "101": "西药中成药", "102": "中药饮片", "201": "医疗服务项目", "301": "医用耗材",
}


def table_for_filename(stem: str) -> TableSpec | None:
    """Return the contract table a file stem (name without extension) names, by name or alias."""
    s = stem.strip().lower()
    for spec in TABLES.values():
        if s == spec.name or s in spec.aliases:
            return spec
    return None
