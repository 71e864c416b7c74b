"""A tiny hand-built claims data set for the graph store tests, with its answers written out.

Five persons, two hospitals/clinics (H001, H002), one pharmacy (P001), three practitioners, a phone shared by
P01 and P02, an address shared by P01 and P03, and P01/P02 admitted together at H001 on two days.
"""

from __future__ import annotations

import csv
from pathlib import Path

__all__ = ["TABLES", "write_csvs", "VISITED", "TREATED_BY", "ADDR_A1", "ADDR_A2"]

ADDR_A1 = "北京市朝阳区幸福路1号"
ADDR_A2 = "北京市海淀区学院路20号"

TABLES: dict[str, list[dict[str, str]]] = {
    "medins_info": [
        {"fixmedins_code": "H001", "fixmedins_name": "仁和医院", "fixmedins_type": "1", "hosp_lv": "03",
         "medins_natu": "1", "admdvs": "110105", "aprv_bed_cnt": "120"},
        {"fixmedins_code": "H002", "fixmedins_name": "康宁诊所", "fixmedins_type": "1", "hosp_lv": "11",
         "medins_natu": "2", "admdvs": "110108", "aprv_bed_cnt": "0"},
        {"fixmedins_code": "P001", "fixmedins_name": "百草药房", "fixmedins_type": "2", "hosp_lv": "",
         "medins_natu": "2", "admdvs": "110105", "aprv_bed_cnt": ""},
    ],
    "prac_info": [
        {"prac_psn_code": "D001", "prac_psn_name": "周医生", "prac_psn_type": "1", "fixmedins_code": "H001",
         "dept_code": "A03", "dept_name": "内科"},
        {"prac_psn_code": "D002", "prac_psn_name": "吴医生", "prac_psn_type": "1", "fixmedins_code": "H002",
         "dept_code": "A01", "dept_name": "全科"},
        {"prac_psn_code": "D003", "prac_psn_name": "郑药师", "prac_psn_type": "3", "fixmedins_code": "P001",
         "dept_code": "", "dept_name": ""},
    ],
    "psn_info": [
        {"psn_no": "P01", "psn_name": "张三", "gend": "1", "brdy": "1960-05-01", "certno": "110105196005010011",
         "insutype": "310", "insuplc_admdvs": "110105", "mob": "13800000001", "live_addr": ADDR_A1,
         "live_admdvs": "110105"},
        {"psn_no": "P02", "psn_name": "李四", "gend": "2", "brdy": "1965-07-02", "certno": "110105196507020022",
         "insutype": "310", "insuplc_admdvs": "110105", "mob": "13800000001", "live_addr": ADDR_A2,
         "live_admdvs": "110108"},
        {"psn_no": "P03", "psn_name": "王五", "gend": "1", "brdy": "1970-01-03", "certno": "110105197001030033",
         "insutype": "390", "insuplc_admdvs": "110105", "mob": "13900000003", "live_addr": ADDR_A1,
         "live_admdvs": "110105"},
        {"psn_no": "P04", "psn_name": "赵六", "gend": "2", "brdy": "1980-02-04", "certno": "110105198002040044",
         "insutype": "390", "insuplc_admdvs": "110105", "mob": "13700000004", "live_addr": "北京市西城区金融街5号",
         "live_admdvs": "110102"},
        {"psn_no": "P05", "psn_name": "孙七", "gend": "1", "brdy": "1990-03-05", "certno": "110105199003050055",
         "insutype": "390", "insuplc_admdvs": "110105", "mob": "13600000005", "live_addr": "北京市东城区东四10号",
         "live_admdvs": "110101"},
    ],
    "hilist": [
        {"hilist_code": "X001", "hilist_name": "重点药甲", "list_type": "101", "pric_uplmt_amt": "100",
         "max_days_per_fill": "30", "key_drug_flag": "1"},
        {"hilist_code": "S001", "hilist_name": "床位费", "list_type": "201", "pric_uplmt_amt": "80",
         "max_days_per_fill": "", "key_drug_flag": "0"},
    ],
}

# (mdtrt_id, psn_no, fixmedins_code, med_type, begntime, endtime, atddr_no, medfee, fund)
_VISITS = [
    ("V01", "P01", "H001", "21", "2024-01-10 08:00:00", "2024-01-15 09:00:00", "D001", "1000.00", "800.00"),
    ("V02", "P02", "H001", "21", "2024-01-10 09:30:00", "2024-01-14 10:00:00", "D001", "1200.50", "900.00"),
    ("V03", "P01", "H001", "21", "2024-03-05 10:00:00", "2024-03-08 10:00:00", "D001", "800.00", "600.00"),
    ("V04", "P02", "H001", "21", "2024-03-05 11:00:00", "2024-03-09 10:00:00", "D001", "700.25", "500.00"),
    ("V05", "P03", "H001", "11", "2024-01-10 10:00:00", "2024-01-10 10:00:00", "D001", "50.00", "30.00"),
    ("V06", "P03", "H002", "11", "2024-02-01 09:00:00", "2024-02-01 09:00:00", "D002", "120.00", "80.00"),
    ("V07", "P04", "H002", "11", "2024-02-02 09:00:00", "2024-02-02 09:00:00", "D002", "80.00", "50.00"),
    ("V08", "P01", "P001", "41", "2024-02-10 15:00:00", "2024-02-10 15:00:00", "D003", "300.00", "200.00"),
    ("V09", "P04", "P001", "41", "2024-04-01 15:00:00", "2024-04-01 15:00:00", "D003", "150.00", "100.00"),
    ("V10", "P02", "H002", "11", "2024-04-02 10:00:00", "2024-04-02 10:00:00", "", "60.00", "40.00"),
]
TABLES["mdtrt"] = [
    {"mdtrt_id": v[0], "psn_no": v[1], "fixmedins_code": v[2], "med_type": v[3], "begntime": v[4],
     "endtime": v[5], "mdtrt_cert_type": "03", "atddr_no": v[6], "dept_code": "A03",
     "dise_codg": "I10.x00" if v[3] != "41" else "", "dise_name": "高血压" if v[3] != "41" else "",
     "insuplc_admdvs": "110105", "opter_id": "OP1", "vali_flag": "1"}
    for v in _VISITS
]
TABLES["setl"] = [
    {"setl_id": "S" + v[0], "mdtrt_id": v[0], "psn_no": v[1], "fixmedins_code": v[2], "setl_time": v[5],
     "medfee_sumamt": v[7], "hifp_pay": v[8], "fund_pay_sumamt": v[8], "acct_pay": "0",
     "psn_cash_pay": f"{float(v[7]) - float(v[8]):.2f}", "mdtrt_cert_type": "03", "refd_setl_flag": "0",
     "vali_flag": "1"}
    for v in _VISITS
]
TABLES["fee_list"] = [
    {"feedetl_sn": "1", "mdtrt_id": "V08", "psn_no": "P01", "setl_id": "SV08", "fee_ocur_time": "2024-02-10 15:00:00",
     "hilist_code": "X001", "hilist_name": "重点药甲", "list_type": "101", "cnt": "3", "pric": "100",
     "det_item_fee_sumamt": "300.00", "bilg_dr_codg": "D003", "bilg_dept_codg": "", "prd_days": "30",
     "vali_flag": "1"},
    {"feedetl_sn": "1", "mdtrt_id": "V09", "psn_no": "P04", "setl_id": "SV09", "fee_ocur_time": "2024-04-01 15:00:00",
     "hilist_code": "X001", "hilist_name": "重点药甲", "list_type": "101", "cnt": "1.5", "pric": "100",
     "det_item_fee_sumamt": "150.00", "bilg_dr_codg": "D003", "bilg_dept_codg": "", "prd_days": "15",
     "vali_flag": "1"},
    {"feedetl_sn": "1", "mdtrt_id": "V01", "psn_no": "P01", "setl_id": "SV01", "fee_ocur_time": "2024-01-10 08:00:00",
     "hilist_code": "S001", "hilist_name": "床位费", "list_type": "201", "cnt": "5", "pric": "80",
     "det_item_fee_sumamt": "400.00", "bilg_dr_codg": "D001", "bilg_dept_codg": "A03", "prd_days": "",
     "vali_flag": "1"},
]

# Expected aggregated relationships: (person, node id) -> (visits, amount, first, last)
VISITED = {
    ("P01", "Institution:H001"): (2, 1800.00, "2024-01-10 08:00:00", "2024-03-05 10:00:00"),
    ("P02", "Institution:H001"): (2, 1900.75, "2024-01-10 09:30:00", "2024-03-05 11:00:00"),
    ("P03", "Institution:H001"): (1, 50.00, "2024-01-10 10:00:00", "2024-01-10 10:00:00"),
    ("P03", "Institution:H002"): (1, 120.00, "2024-02-01 09:00:00", "2024-02-01 09:00:00"),
    ("P04", "Institution:H002"): (1, 80.00, "2024-02-02 09:00:00", "2024-02-02 09:00:00"),
    ("P02", "Institution:H002"): (1, 60.00, "2024-04-02 10:00:00", "2024-04-02 10:00:00"),
    ("P01", "Pharmacy:P001"): (1, 300.00, "2024-02-10 15:00:00", "2024-02-10 15:00:00"),
    ("P04", "Pharmacy:P001"): (1, 150.00, "2024-04-01 15:00:00", "2024-04-01 15:00:00"),
}
TREATED_BY = {
    ("P01", "Practitioner:D001"): (2, 1800.00, "2024-01-10 08:00:00", "2024-03-05 10:00:00"),
    ("P02", "Practitioner:D001"): (2, 1900.75, "2024-01-10 09:30:00", "2024-03-05 11:00:00"),
    ("P03", "Practitioner:D001"): (1, 50.00, "2024-01-10 10:00:00", "2024-01-10 10:00:00"),
    ("P03", "Practitioner:D002"): (1, 120.00, "2024-02-01 09:00:00", "2024-02-01 09:00:00"),
    ("P04", "Practitioner:D002"): (1, 80.00, "2024-02-02 09:00:00", "2024-02-02 09:00:00"),
    ("P01", "Practitioner:D003"): (1, 300.00, "2024-02-10 15:00:00", "2024-02-10 15:00:00"),
    ("P04", "Practitioner:D003"): (1, 150.00, "2024-04-01 15:00:00", "2024-04-01 15:00:00"),
}


def write_csvs(folder: Path) -> Path:
    """Write the tables as contract CSV files (UTF-8) into `folder` and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in TABLES.items():
        with open(folder / f"{name}.csv", "w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return folder
