"""Entity features for the learned ranking: claims aggregates against the peer group, entity-graph features,
guilt by association with labelled-fraud neighbours (the entity's own label left out) and the detectors' scores.

`EntityData.load(con)` reads everything that does not depend on labels once (DuckDB SQL over `visit_fact`,
`psn_info`, the lead store; communities with igraph); `EntityData.features(labels)` adds the association
features for one set of known labels — so a benchmark can reveal different label sets cheaply, and a test can
flip one entity's label and check that its own features do not move.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["EntityData", "FEATURE_NAMES_ZH", "FEATURE_NAMES_EN", "feature_label", "ENTITY_TYPES"]

log = logging.getLogger(__name__)

ENTITY_TYPES: tuple[str, ...] = ("Institution", "Practitioner", "Person")

# Feature name (or prefix) → (Chinese, English) for explanations.
_NAMES: dict[str, tuple[str, str]] = {
    "log_fund": ("基金支付总额(对数)", "fund paid (log)"),
    "log_visits": ("就诊次数(对数)", "visits (log)"),
    "log_persons": ("就诊人数(对数)", "distinct patients (log)"),
    "log_practitioners": ("医师数(对数)", "distinct practitioners (log)"),
    "log_institutions": ("机构数(对数)", "distinct institutions (log)"),
    "fund_per_visit_peer": ("次均基金支付/同类中位数(对数)", "fund per visit vs peer median (log ratio)"),
    "fund_per_person_peer": ("人均基金支付/同类中位数(对数)", "fund per patient vs peer median (log ratio)"),
    "visits_per_person_peer": ("人均就诊次数/同类中位数(对数)", "visits per patient vs peer median (log ratio)"),
    "inpatient_share": ("住院占比", "inpatient share"),
    "inpatient_share_peer": ("住院占比-同类中位数", "inpatient share minus peer median"),
    "mean_los_peer": ("平均住院日-同类中位数", "mean length of stay minus peer median"),
    "refund_share": ("退费就诊占比", "refunded visit share"),
    "degree": ("关系图度数(对数)", "entity-graph degree (log)"),
    "community_log_size": ("所在社区规模(对数)", "community size (log)"),
    "community_fraud_rate": ("所在社区已确认违规比例(不含自身)",
        "confirmed-fraud rate in its community (itself excluded)"),
    "gba_fraud_institutions": ("关联已确认违规机构数", "linked institutions labelled fraud"),
    "gba_fraud_institution_share": ("在已确认违规机构的就诊占比", "share of visits at institutions labelled fraud"),
    "gba_fraud_practitioners": ("关联已确认违规医师数", "linked practitioners labelled fraud"),
    "gba_fraud_persons": ("关联已确认违规人员数", "linked persons labelled fraud"),
    "gba_fraud_person_share": ("患者中已确认违规人员占比", "share of patients labelled fraud"),
    "gba_shared_prac_fraud_institutions": ("共享医师的已确认违规机构数",
        "institutions labelled fraud sharing practitioners"),
    "gba_shared_person_fraud_institutions": ("共享患者的已确认违规机构(加权)",
        "institutions labelled fraud sharing patients (weighted)"),
    "gba_coworker_fraud_practitioners": ("同机构已确认违规医师数", "co-worker practitioners labelled fraud"),
    "gba_shared_contact_fraud_persons": ("共用电话/住址的已确认违规人员数",
        "persons labelled fraud sharing phone/address"),
    "unsupervised_risk": ("无监督风险分", "unsupervised risk score"),
    "lead_count": ("线索数(对数)", "leads (log)"),
    "lead_amount_share": ("线索涉嫌金额/基金支付", "lead amount at risk / fund paid"),
}


def feature_label(name: str, lang: str = "en") -> str:
    """The Chinese (`zh`) or English name of a feature (lead-kind scores named after their kind)."""
    if name.startswith("score:"):
        kind = name[len("score:"):]
        return f"{kind} 线索最高分" if lang == "zh" else f"best {kind} lead score"
    zh, en = _NAMES.get(name, (name, name))
    return zh if lang == "zh" else en


FEATURE_NAMES_ZH = {k: v[0] for k, v in _NAMES.items()}
FEATURE_NAMES_EN = {k: v[1] for k, v in _NAMES.items()}

_KEY = {"Institution": "fixmedins_code", "Practitioner": "atddr_no", "Person": "psn_no"}


def _log_ratio(values: pd.Series, groups: pd.Series) -> pd.Series:
    """log(value / median of its peer group), 0 where either is not positive."""
    med = values.groupby(groups).transform("median")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(values.to_numpy(dtype=float) / med.to_numpy(dtype=float))
    return pd.Series(np.where(np.isfinite(out), out, 0.0), index=values.index)


def _binary(m: sp.csr_matrix) -> sp.csr_matrix:
    b = m.copy()
    b.data = np.ones_like(b.data, dtype=float)
    return b


def _no_self(m: sp.csr_matrix) -> sp.csr_matrix:
    m = m.tocsr(copy=True)
    m.setdiag(0)
    m.eliminate_zeros()
    return m


@dataclass
class EntityData:
    """Label-independent entity data: base feature frames per type, id indexes, sparse relations, communities."""

    base: dict[str, pd.DataFrame]
    index: dict[str, pd.Index]
    rel: dict[str, sp.csr_matrix]
    community: dict[str, np.ndarray]
    n_communities: int
    amount: dict[str, pd.Series]
    risk: dict[str, pd.Series]
    main_institution: dict[str, pd.Series]
    lead_amount: dict[str, pd.Series]

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, con: Any, communities: bool = True) -> EntityData:
        """Read visits, contacts and leads from the claims store and build everything label-independent.

        Aggregates and entity pairs come from DuckDB SQL (one pass per type); pandas only sees per-entity rows.
        """
        con.execute("""CREATE OR REPLACE TEMP VIEW _fn_lv AS
            SELECT psn_no, fixmedins_code, nullif(atddr_no, '') AS atddr_no,
                   coalesce(fund_pay_sumamt, 0)::DOUBLE AS fund, coalesce(is_inpatient, false) AS inp,
                   los_days, coalesce(refunded, false) AS refunded FROM visit_fact""")
        # Each type's ids in sorted order with their positions, joined in SQL (no string look-ups in pandas).
        index: dict[str, pd.Index] = {}
        for t in ENTITY_TYPES:
            con.execute(f"""CREATE OR REPLACE TEMP TABLE _fn_pos_{t} AS
                SELECT id, (row_number() OVER (ORDER BY id) - 1)::BIGINT AS pos
                FROM (SELECT DISTINCT {_KEY[t]} AS id FROM _fn_lv WHERE {_KEY[t]} IS NOT NULL)""")
            index[t] = pd.Index(con.execute(f"SELECT id FROM _fn_pos_{t} ORDER BY pos").df()["id"].astype(object))

        def pairs(a: str, b: str) -> sp.csr_matrix:
            frame = con.execute(
                f"""SELECT pa.pos AS a, pb.pos AS b, count(*)::DOUBLE AS n FROM _fn_lv v
                    JOIN _fn_pos_{a} pa ON pa.id = v.{_KEY[a]} JOIN _fn_pos_{b} pb ON pb.id = v.{_KEY[b]}
                    GROUP BY ALL""").df()
            return sp.csr_matrix((frame["n"].to_numpy(), (frame["a"].to_numpy(), frame["b"].to_numpy())),
                                 shape=(len(index[a]), len(index[b])))

        rel = {"IP": pairs("Institution", "Person"), "IR": pairs("Institution", "Practitioner"),
               "RP": pairs("Practitioner", "Person")}
        rel["PC"] = cls._contacts(con, index["Person"])
        peer_of = dict(con.execute(
            "SELECT fixmedins_code, coalesce(fixmedins_type, '?') || '/' || coalesce(hosp_lv, '?') "
            "FROM medins_info").fetchall())

        # Main institution of each practitioner and person (for grouped validation and peer groups).
        main: dict[str, pd.Series] = {"Institution": pd.Series(index["Institution"], index=index["Institution"])}
        for t in ("Practitioner", "Person"):
            key = _KEY[t]
            top = con.execute(
                f"""SELECT coalesce(m.fixmedins_code, '?') AS code FROM _fn_pos_{t} p LEFT JOIN (
                        SELECT id, fixmedins_code FROM (
                            SELECT {key} AS id, fixmedins_code, row_number() OVER (
                                PARTITION BY {key} ORDER BY count(*) DESC, fixmedins_code) AS rn
                            FROM _fn_lv WHERE {key} IS NOT NULL AND fixmedins_code IS NOT NULL
                            GROUP BY {key}, fixmedins_code)
                        WHERE rn = 1) m USING (id)
                    ORDER BY p.pos""").df()["code"].astype(object).to_numpy()
            main[t] = pd.Series(top, index=index[t])

        base: dict[str, pd.DataFrame] = {}
        amount: dict[str, pd.Series] = {}
        for t in ENTITY_TYPES:
            key = _KEY[t]
            f = con.execute(
                f"""SELECT any_value(p.pos) AS pos,
                           coalesce(sum(fund) FILTER (NOT refunded), 0) AS fund,
                           count(*)::DOUBLE AS visits,
                           count(DISTINCT psn_no) FILTER (NOT refunded)::DOUBLE AS persons,
                           count(DISTINCT atddr_no) FILTER (NOT refunded)::DOUBLE AS practitioners,
                           count(DISTINCT fixmedins_code) FILTER (NOT refunded)::DOUBLE AS institutions,
                           avg(inp::INTEGER)::DOUBLE AS inpatient_share,
                           coalesce(avg(los_days) FILTER (NOT refunded AND inp), 0)::DOUBLE AS mean_los,
                           avg(refunded::INTEGER)::DOUBLE AS refund_share
                    FROM _fn_lv v JOIN _fn_pos_{t} p ON p.id = v.{key} GROUP BY v.{key}
                    ORDER BY pos""").df().drop(columns="pos")
            f.index = index[t]
            f = f.fillna(0.0)
            if t == "Institution":
                groups = pd.Series([peer_of.get(k, "?/?") for k in index[t]], index=index[t])
            else:  # practitioners and persons: peers are those of the same main institution kind
                groups = main[t].map(pd.Series(peer_of)).fillna("?/?")
            out = pd.DataFrame(index=index[t])
            out["log_fund"] = np.log1p(f["fund"])
            out["log_visits"] = np.log1p(f["visits"])
            if t != "Person":
                out["log_persons"] = np.log1p(f["persons"])
            if t != "Practitioner":
                out["log_practitioners"] = np.log1p(f["practitioners"])
            if t != "Institution":
                out["log_institutions"] = np.log1p(f["institutions"])
            visits_n = f["visits"].where(f["visits"] > 0)
            out["fund_per_visit_peer"] = _log_ratio(f["fund"] / visits_n, groups)
            if t != "Person":
                out["fund_per_person_peer"] = _log_ratio(f["fund"] / f["persons"].where(f["persons"] > 0), groups)
                out["visits_per_person_peer"] = _log_ratio(f["visits"] / f["persons"].where(f["persons"] > 0),
                                                           groups)
            out["inpatient_share"] = f["inpatient_share"]
            out["inpatient_share_peer"] = f["inpatient_share"] - f["inpatient_share"].groupby(groups).transform(
                "median")
            out["mean_los_peer"] = f["mean_los"] - f["mean_los"].groupby(groups).transform("median")
            out["refund_share"] = f["refund_share"]
            base[t] = out
            amount[t] = f["fund"]
        con.execute("DROP VIEW IF EXISTS _fn_lv")
        for t in ENTITY_TYPES:
            con.execute(f"DROP TABLE IF EXISTS _fn_pos_{t}")
        # Degree in the entity graph: distinct neighbours of the other two types.
        base["Institution"]["degree"] = np.log1p(np.asarray(_binary(rel["IP"]).sum(axis=1)
                                                              + _binary(rel["IR"]).sum(axis=1)).ravel())
        base["Practitioner"]["degree"] = np.log1p(np.asarray(_binary(rel["RP"]).sum(axis=1)
                                                               + _binary(rel["IR"]).sum(axis=0).T).ravel())
        base["Person"]["degree"] = np.log1p(np.asarray(_binary(rel["IP"]).sum(axis=0)
                                                         + _binary(rel["RP"]).sum(axis=0)).ravel()
                                            + np.asarray(_no_self(_binary(rel["PC"]) @ _binary(rel["PC"]).T)
                                                         .getnnz(axis=1)))
        risk, lead_amount = cls._lead_features(con, index, base, amount)
        comm, n_comm = (cls._communities(rel, index) if communities
                        else ({t: np.zeros(len(index[t]), dtype=np.int64) for t in ENTITY_TYPES}, 1))
        sizes = np.bincount(np.concatenate([comm[t] for t in ENTITY_TYPES]), minlength=n_comm)
        for t in ENTITY_TYPES:
            base[t]["community_log_size"] = np.log1p(sizes[comm[t]])
        return cls(base, index, rel, comm, n_comm, amount, risk, main, lead_amount)

    @staticmethod
    def _contacts(con: Any, persons: pd.Index) -> sp.csr_matrix:
        """Person × contact (phone hash, address key) incidence; contacts shared by more than 30 persons (a care
        home, a hospital's phone) are left out."""
        try:
            frame = con.execute(
                """WITH c AS (SELECT psn_no, 'm:' || mob_hash AS c FROM psn_info WHERE mob_hash IS NOT NULL
                              UNION ALL
                              SELECT psn_no, 'a:' || addr_key FROM psn_info WHERE addr_key IS NOT NULL)
                   SELECT psn_no, c FROM c WHERE c IN (SELECT c FROM c GROUP BY c HAVING count(*) BETWEEN 2 AND 30)
                """).df()
        except Exception:  # no psn_info: no contacts
            frame = pd.DataFrame(columns=["psn_no", "c"])
        p = persons.get_indexer(frame["psn_no"])
        codes, uniq = pd.factorize(frame["c"])
        ok = p >= 0
        return sp.csr_matrix((np.ones(int(ok.sum())), (p[ok], codes[ok])), shape=(len(persons), max(1, len(uniq))))

    @staticmethod
    def _lead_features(con: Any, index: dict[str, pd.Index], base: dict[str, pd.DataFrame],
                       amount: dict[str, pd.Series]) -> tuple[dict[str, pd.Series], dict[str, pd.Series]]:
        """Detector scores per entity: best score per lead kind, lead count, amount share, unsupervised risk.

        Every active lead counts whatever its status: a decision on a lead is never a feature (no leakage).
        Returns the queue's unsupervised risk (dismissed leads left out, as the queue shows it) for comparison
        and each entity's amount at risk (its active, not dismissed leads) for expected recovery.
        """
        from fraudnet.detectors.registry import KINDS
        from fraudnet.detectors.risk import entity_risk

        try:
            leads = con.execute(
                """SELECT kind, score, amount_at_risk, persons, practitioners, institutions FROM leads
                   WHERE active""").df()
        except Exception:  # no lead store yet
            leads = pd.DataFrame(columns=["kind", "score", "amount_at_risk", "persons", "practitioners",
                                          "institutions"])
        rows = []
        for col, t in (("persons", "Person"), ("practitioners", "Practitioner"), ("institutions", "Institution")):
            part = leads[["kind", "score", "amount_at_risk", col]].explode(col).dropna(subset=[col])
            part = part.rename(columns={col: "entity_id"}).assign(entity_type=t)
            rows.append(part)
        members = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
        try:
            blind = entity_risk(con, include_dismissed=True)  # no decision enters a feature
            dismissed = con.execute("SELECT count(*) FROM leads WHERE active AND status = 'dismissed'").fetchone()[0]
            queue = entity_risk(con) if dismissed else blind
        except Exception:
            blind = queue = pd.DataFrame(columns=["entity_type", "entity_id", "score", "amount_at_risk"])
        risk: dict[str, pd.Series] = {}
        lead_amount: dict[str, pd.Series] = {}
        for t in ENTITY_TYPES:
            f = base[t]
            m = members[members["entity_type"] == t] if len(members) else members
            for kind in KINDS:
                best = m[m["kind"] == kind].groupby("entity_id")["score"].max() if len(m) else pd.Series(dtype=float)
                f[f"score:{kind}"] = best.reindex(index[t]).fillna(0.0).astype(float).to_numpy()
            n = m.groupby("entity_id").size() if len(m) else pd.Series(dtype=float)
            amt = m.groupby("entity_id")["amount_at_risk"].sum() if len(m) else pd.Series(dtype=float)
            f["lead_count"] = np.log1p(n.reindex(index[t]).fillna(0).astype(float).to_numpy())
            share = amt.reindex(index[t]).fillna(0).astype(float) / amount[t].where(amount[t] > 0)
            f["lead_amount_share"] = share.clip(upper=1.0).fillna(0.0).to_numpy()
            b = blind[blind["entity_type"] == t].set_index("entity_id")["score"]
            f["unsupervised_risk"] = b.reindex(index[t]).fillna(0.0).astype(float).to_numpy()
            q = queue[queue["entity_type"] == t].set_index("entity_id")["score"]
            risk[t] = q.reindex(index[t]).fillna(0.0).astype(float)
            qa = queue[queue["entity_type"] == t].set_index("entity_id")["amount_at_risk"]
            lead_amount[t] = qa.reindex(index[t]).fillna(0.0).astype(float)
        return risk, lead_amount

    @staticmethod
    def _communities(rel: dict[str, sp.csr_matrix], index: dict[str, pd.Index]) -> tuple[dict[str, np.ndarray], int]:
        """Leiden communities (modularity, igraph, seeded) of the person–institution–practitioner graph, edges
        weighted by visits; a community id per entity."""
        import igraph as ig

        ni, nr, npn = (len(index[t]) for t in ENTITY_TYPES)
        edges, weights = [], []
        for key, off_a, off_b in (("IP", 0, ni + nr), ("IR", 0, ni), ("RP", ni, ni + nr)):
            m = rel[key].tocoo()
            edges.append(np.column_stack([m.row + off_a, m.col + off_b]))
            weights.append(m.data)
        pc = _no_self(_binary(rel["PC"]) @ _binary(rel["PC"]).T).tocoo()
        upper = pc.row < pc.col
        edges.append(np.column_stack([pc.row[upper] + ni + nr, pc.col[upper] + ni + nr]))
        weights.append(np.full(int(upper.sum()), 2.0))
        e = np.concatenate(edges) if edges else np.zeros((0, 2), dtype=np.int64)
        g = ig.Graph(n=ni + nr + npn, edges=e.tolist(), directed=False)
        g.es["weight"] = np.concatenate(weights).tolist()
        import random

        ig.set_random_number_generator(random.Random(0))  # the same communities on every run
        try:
            memb = np.asarray(g.community_leiden(objective_function="modularity", weights="weight",
                                                 n_iterations=2).membership, dtype=np.int64)
        finally:
            ig.set_random_number_generator(random)
        return ({"Institution": memb[:ni], "Practitioner": memb[ni:ni + nr], "Person": memb[ni + nr:]},
                int(memb.max()) + 1 if len(memb) else 1)

    # ------------------------------------------------------------------ label-dependent features
    def features(self, labels: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
        """Base features plus guilt-by-association features from the known `labels` (entity_type, entity_id,
        label). An entity's own label never enters its own features: same-type neighbour counts exclude it, and
        its community's fraud rate is computed without it."""
        fraud = {t: np.zeros(len(self.index[t])) for t in ENTITY_TYPES}
        known = {t: np.zeros(len(self.index[t])) for t in ENTITY_TYPES}
        if labels is not None and len(labels):
            for t in ENTITY_TYPES:
                lab = labels[labels["entity_type"] == t]
                p = self.index[t].get_indexer(lab["entity_id"])
                ok = p >= 0
                known[t][p[ok]] = 1.0
                fraud[t][p[ok]] = (lab["label"].to_numpy()[ok] == "fraud").astype(float)
        bip, bir, brp, bpc = (_binary(self.rel[k]) for k in ("IP", "IR", "RP", "PC"))
        n_pers_i = np.maximum(1.0, np.asarray(bip.sum(axis=1)).ravel())
        n_pers_r = np.maximum(1.0, np.asarray(brp.sum(axis=1)).ravel())
        visits_p = np.maximum(1.0, np.asarray(self.rel["IP"].sum(axis=0)).ravel())
        out = {t: self.base[t].copy() for t in ENTITY_TYPES}

        fi = out["Institution"]
        fi["gba_fraud_persons"] = np.log1p(bip @ fraud["Person"])
        fi["gba_fraud_person_share"] = (bip @ fraud["Person"]) / n_pers_i
        fi["gba_fraud_practitioners"] = np.log1p(bir @ fraud["Practitioner"])
        shared_prac = _no_self(_binary(bir @ bir.T))
        fi["gba_shared_prac_fraud_institutions"] = np.log1p(shared_prac @ fraud["Institution"])
        shared_pers = _no_self(bip @ bip.T)
        fi["gba_shared_person_fraud_institutions"] = (shared_pers @ fraud["Institution"]) / n_pers_i

        fr = out["Practitioner"]
        fr["gba_fraud_institutions"] = np.log1p(bir.T @ fraud["Institution"])
        fr["gba_fraud_institution_share"] = (self.rel["IR"].T @ fraud["Institution"]) / np.maximum(
            1.0, np.asarray(self.rel["IR"].sum(axis=0)).ravel())
        fr["gba_fraud_persons"] = np.log1p(brp @ fraud["Person"])
        fr["gba_fraud_person_share"] = (brp @ fraud["Person"]) / n_pers_r
        cowork = _no_self(_binary(bir.T @ bir))
        fr["gba_coworker_fraud_practitioners"] = np.log1p(cowork @ fraud["Practitioner"])

        fp = out["Person"]
        fp["gba_fraud_institutions"] = np.log1p(bip.T @ fraud["Institution"])
        fp["gba_fraud_institution_share"] = (self.rel["IP"].T @ fraud["Institution"]) / visits_p
        fp["gba_fraud_practitioners"] = np.log1p(brp.T @ fraud["Practitioner"])
        contacts = _no_self(_binary(bpc @ bpc.T))
        fp["gba_shared_contact_fraud_persons"] = np.log1p(contacts @ fraud["Person"])

        # Community fraud rate without the entity itself, shrunk to the overall rate among labelled entities.
        comm_fraud = np.zeros(self.n_communities)
        comm_known = np.zeros(self.n_communities)
        for t in ENTITY_TYPES:
            np.add.at(comm_fraud, self.community[t], fraud[t])
            np.add.at(comm_known, self.community[t], known[t])
        total_known = sum(k.sum() for k in known.values())
        total_fraud = sum(f.sum() for f in fraud.values())
        for t in ENTITY_TYPES:
            c = self.community[t]
            f_others = comm_fraud[c] - fraud[t]
            k_others = comm_known[c] - known[t]
            # The prior, too, leaves the entity's own label out.
            k_all = total_known - known[t]
            prior = np.divide(total_fraud - fraud[t], k_all, out=np.zeros_like(k_all), where=k_all > 0)
            out[t]["community_fraud_rate"] = (f_others + 2.0 * prior) / (k_others + 2.0)
        for t in ENTITY_TYPES:
            out[t] = out[t].astype(float)
        return out
