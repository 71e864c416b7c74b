"""A small hand-built claims store for the learning tests: 40 institutions, 20 of them fraudulent (dearer visits,
practitioners shared in rings of four), 1,200 persons in households sharing a phone."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from fraudnet.claims.schema import create_schema, refresh_visit_fact

N_INST = 40
FRAUD = [f"H{i:02d}" for i in range(20)]
CLEAN = [f"H{i:02d}" for i in range(20, 40)]


def build_world(con, seed: int = 0) -> None:
    """Fill `con` (empty) with the toy city."""
    rng = np.random.default_rng(seed)
    create_schema(con)
    con.execute("INSERT INTO ingest_batches (batch_id, table_name, status) VALUES (1, 'mdtrt', 'loaded'), "
                "(2, 'setl', 'loaded')")
    insts = [f"H{i:02d}" for i in range(N_INST)]
    med = pd.DataFrame({"fixmedins_code": insts, "fixmedins_name": insts, "fixmedins_type": "1", "hosp_lv": "11"})
    con.register("_m", med)
    con.execute("INSERT INTO medins_info (fixmedins_code, fixmedins_name, fixmedins_type, hosp_lv) "
                "SELECT * FROM _m")
    persons = [f"P{i:04d}" for i in range(1200)]
    psn = pd.DataFrame({"psn_no": persons, "mob_hash": [f"m{i // 2}" for i in range(1200)]})
    con.register("_p", psn)
    con.execute("INSERT INTO psn_info (psn_no, mob_hash) SELECT * FROM _p")
    mdtrt, setl = [], []
    start = datetime(2025, 1, 1)
    n = 0
    for p in persons:
        for inst in rng.choice(insts, 2, replace=False):
            i = int(inst[1:])
            fraud = inst in FRAUD
            pracs = [f"D{i:02d}{k}" for k in range(3)] + ([f"R{i // 4}"] if fraud else [])
            for _ in range(3):
                n += 1
                t = start + timedelta(days=int(rng.integers(0, 300)), hours=9)
                mid = f"V{n:06d}"
                mdtrt.append((mid, p, inst, "11", t, t + timedelta(hours=1), str(rng.choice(pracs)), "1", 1))
                fund = float(rng.gamma(4.0, 60.0)) * (2.5 if fraud else 1.0)
                setl.append((f"S{n:06d}", mid, p, inst, t, fund * 1.3, fund, fund, 0.0, fund * 0.3, "0", "1", 2))
    md = pd.DataFrame(mdtrt, columns=["mdtrt_id", "psn_no", "fixmedins_code", "med_type", "begntime", "endtime",
                                      "atddr_no", "vali_flag", "_batch_id"])
    st = pd.DataFrame(setl, columns=["setl_id", "mdtrt_id", "psn_no", "fixmedins_code", "setl_time",
                                     "medfee_sumamt", "fund_pay_sumamt", "hifp_pay", "acct_pay", "psn_cash_pay",
                                     "refd_setl_flag", "vali_flag", "_batch_id"])
    con.register("_md", md)
    con.register("_st", st)
    con.execute(f"INSERT INTO mdtrt ({', '.join(md.columns)}) SELECT * FROM _md")
    con.execute(f"INSERT INTO setl ({', '.join(st.columns)}) SELECT * FROM _st")
    for name in ("_m", "_p", "_md", "_st"):
        con.unregister(name)
    refresh_visit_fact(con)


def institution_labels(fraud: list[str] = FRAUD, clean: list[str] = CLEAN) -> pd.DataFrame:
    rows = [("Institution", i, "fraud") for i in fraud] + [("Institution", i, "clean") for i in clean]
    frame = pd.DataFrame(rows, columns=["entity_type", "entity_id", "label"])
    frame["decided_at"] = None
    return frame
