"""Reference data for the synthetic city: names, districts, streets, departments, diagnoses and the catalogue."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "SURNAMES",
    "SURNAME_WEIGHTS",
    "GIVEN_CHARS",
    "District",
    "DISTRICTS",
    "STREET_WORDS",
    "STREET_SUFFIX",
    "Dept",
    "DEPTS",
    "Diagnosis",
    "DIAGNOSES",
    "Item",
    "CATALOGUE",
    "SUPPLIERS",
    "EMPLOYERS",
    "INST_NAME_WORDS",
    "PHARMACY_BRANDS",
    "MOBILE_PREFIXES",
    "CITY_NAME",
    "CITY_ADMDVS",
    "OTHER_CITY_ADMDVS",
]

CITY_NAME = "上海市"
# Pooling area (统筹区) of local insured persons; institutions and homes carry their district code (3101xx).
CITY_ADMDVS = "310100"
# A few insured persons belong to other pooling areas (异地参保): Suzhou, Hangzhou, Hefei, Nanjing.
OTHER_CITY_ADMDVS = ("320500", "330100", "340100", "320100")

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾"
    "夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
# Roughly Zipf-like frequency of the surnames above (the first ones are far more common).
SURNAME_WEIGHTS = tuple(1.0 / (i + 4) ** 0.9 for i in range(len(SURNAMES)))
GIVEN_CHARS = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国文辉力鹏飞斌宇浩凯峰波晨雪婷琳颖佳怡欣悦"
    "俊杰子轩梓涵思雨一诺宏志海燕春梅德福荣喜庆祥瑞晓东亮林云凤琴慧敏淑珍秀英玲丹宁健"
)


@dataclass(frozen=True)
class District:
    """A city district (区): its admdvs code, name, centre coordinates and population weight."""

    admdvs: str
    name: str
    lnt: float
    lat: float
    weight: float


DISTRICTS: tuple[District, ...] = (
    District("310101", "黄浦区", 121.484, 31.232, 0.05),
    District("310104", "徐汇区", 121.437, 31.188, 0.08),
    District("310105", "长宁区", 121.424, 31.220, 0.05),
    District("310106", "静安区", 121.448, 31.229, 0.07),
    District("310107", "普陀区", 121.397, 31.250, 0.08),
    District("310109", "虹口区", 121.505, 31.265, 0.05),
    District("310110", "杨浦区", 121.526, 31.260, 0.09),
    District("310112", "闵行区", 121.381, 31.113, 0.14),
    District("310113", "宝山区", 121.489, 31.405, 0.11),
    District("310115", "浦东新区", 121.567, 31.205, 0.20),
    District("310117", "松江区", 121.228, 31.032, 0.08),
)

STREET_WORDS = (
    "长宁", "延安", "南京", "淮海", "四川", "天目", "江宁", "武宁", "曹杨", "中山", "漕溪", "龙华", "虹桥", "吴中",
    "沪闵", "莲花", "银都", "共和", "长江", "友谊", "牡丹江", "张杨", "世纪", "锦绣", "川沙", "人民", "新松江",
    "荣乐", "控江", "国权", "黄兴", "政立", "江湾", "大连", "四平", "凉城", "广中", "曲阳", "宜川", "真北", "梅川",
)
STREET_SUFFIX = ("路", "路", "路", "街", "大道")

MOBILE_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155",
                   "156", "157", "158", "159", "166", "176", "177", "180", "181", "182", "183", "185", "186",
                   "187", "188", "189", "191", "193", "195", "199")


@dataclass(frozen=True)
class Dept:
    """A clinical department (科室) code and name."""

    code: str
    name: str


DEPTS: tuple[Dept, ...] = (
    Dept("A02", "全科医疗科"),
    Dept("A03", "内科"),
    Dept("A04", "外科"),
    Dept("A05", "妇产科"),
    Dept("A07", "儿科"),
    Dept("A11", "耳鼻咽喉科"),
    Dept("A12", "口腔科"),
    Dept("A15", "肿瘤科"),
    Dept("A16", "骨科"),
    Dept("A20", "急诊医学科"),
    Dept("A50", "中医科"),
)


@dataclass(frozen=True)
class Diagnosis:
    """A main diagnosis (ICD-10 医保版) with where and to whom it happens and which catalogue items it draws.

    Weights are relative frequencies per setting: `w_out` ordinary outpatient, `w_er` emergency, `w_in`
    inpatient, `chronic` marks the diagnoses of 门诊慢特病. `sex` 0 any, 1 male only, 2 female only.
    `drugs` and `services` name catalogue items (by key) used for this diagnosis; `los` mean stay in days.
    """

    code: str
    name: str
    dept: str
    w_out: float
    w_er: float
    w_in: float
    chronic: bool = False
    sex: int = 0
    age_min: int = 0
    age_max: int = 110
    drugs: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    los: float = 7.0


DIAGNOSES: tuple[Diagnosis, ...] = (
    Diagnosis("J06.900", "急性上呼吸道感染", "A03", 14, 8, 0, drugs=("amox", "lianhua", "ibup", "ambroxol"),
              services=("xcg",)),
    Diagnosis("J20.900", "急性支气管炎", "A03", 6, 3, 1, drugs=("cefu", "ambroxol", "azith", "lianhua"),
              services=("xcg", "xray"), los=6),
    Diagnosis("J18.900", "肺炎", "A03", 2, 3, 9, drugs=("cefu", "azith", "levo", "ambroxol"),
              services=("xcg", "ct", "crp"), los=9),
    Diagnosis("K29.500", "慢性胃炎", "A03", 7, 1, 2, drugs=("omep", "mosap", "pant"), services=("gastro",), los=6),
    Diagnosis("K35.800", "急性阑尾炎", "A04", 0.3, 2, 3, drugs=("cefu", "metro"), services=("us", "xcg", "op_app"),
              los=6),
    Diagnosis("M54.500", "腰背痛", "A16", 6, 1, 1, drugs=("ibup", "cele", "mecob"), services=("xray", "acup"), los=8),
    Diagnosis("M51.202", "腰椎间盘突出", "A16", 3, 0.5, 3, drugs=("cele", "mecob", "ibup"),
              services=("mri", "acup", "tuina"), los=10),
    Diagnosis("I10.x00", "原发性高血压", "A03", 8, 1, 2, chronic=True, age_min=30,
              drugs=("amlo", "nifed", "valsar", "irbe"), services=("ecg",), los=7),
    Diagnosis("E11.900", "2型糖尿病", "A03", 5, 0.5, 2, chronic=True, age_min=30,
              drugs=("metf", "acarb", "glarg", "dapa", "sema"), services=("glu", "hba1c"), los=8),
    Diagnosis("I25.103", "冠状动脉粥样硬化性心脏病", "A03", 3, 1, 3, chronic=True, age_min=40,
              drugs=("atorv", "clop", "ticag", "aspi"), services=("ecg", "echo"), los=8),
    Diagnosis("N18.900", "慢性肾脏病", "A03", 1, 0.3, 1.5, chronic=True, age_min=30,
              drugs=("epo", "calc", "kcl"), services=("crea", "us"), los=10),
    Diagnosis("I63.900", "脑梗死", "A03", 1, 2, 4, age_min=40, drugs=("aspi", "atorv", "clop", "butyl"),
              services=("ct", "mri"), los=12),
    Diagnosis("I67.800", "脑供血不足", "A03", 2, 0.5, 2, age_min=35, drugs=("butyl", "ginkgo", "aspi"),
              services=("tcd", "ct"), los=9),
    Diagnosis("C34.900", "肺恶性肿瘤", "A15", 0.8, 0.2, 3, age_min=35, drugs=("osim", "ondan", "cefu"),
              services=("ct", "chemo"), los=14),
    Diagnosis("O80.000", "单胎顺产", "A05", 0, 0.2, 2.5, sex=2, age_min=20, age_max=45, drugs=("oxyt", "cefu"),
              services=("deliv", "us"), los=4),
    Diagnosis("O26.900", "妊娠相关情况", "A05", 1, 0.3, 0.3, sex=2, age_min=20, age_max=45, drugs=("folic",),
              services=("us",), los=3),
    Diagnosis("N40.x00", "前列腺增生", "A04", 1.5, 0.2, 0.7, sex=1, age_min=45, drugs=("tams", "finas"),
              services=("psa", "us"), los=7),
    Diagnosis("N76.000", "阴道炎", "A05", 1.5, 0.1, 0, sex=2, age_min=16, age_max=80, drugs=("metro",),
              services=("leuk",)),
    Diagnosis("A09.900", "感染性腹泻", "A03", 2, 2, 0.5, drugs=("montm", "oral_rs", "levo"), services=("stool",),
              los=4),
    Diagnosis("K80.100", "胆囊结石伴胆囊炎", "A04", 0.7, 0.8, 2, drugs=("cefu", "ursod"), services=("us", "op_chole"),
              los=7),
    Diagnosis("S82.200", "胫骨骨折", "A16", 0.4, 1.5, 1.5, drugs=("cele", "cefu"), services=("xray", "cast"), los=11),
    Diagnosis("H10.900", "结膜炎", "A11", 1.5, 0.3, 0, drugs=("levo_eye",), services=()),
    Diagnosis("K02.900", "龋病", "A12", 2, 0, 0, drugs=("ibup",), services=("dental",)),
    Diagnosis("L30.900", "皮炎", "A02", 2, 0.2, 0, drugs=("loratad", "hydro_cr"), services=()),
    Diagnosis("Z00.000", "健康查体", "A02", 1.5, 0, 0, drugs=(), services=("xcg", "ecg", "us")),
    # never drawn for ordinary care (weights 0): the diagnosis of one-off group admissions (outbreaks)
    Diagnosis("T62.900", "食物中毒", "A03", 0, 0, 0, drugs=("oral_rs", "montm", "levo"),
              services=("xcg", "stool"), los=3),
)


@dataclass(frozen=True)
class Item:
    """A catalogue item (医保目录): key, name, list_type, price ceiling, pack days, chronic and key-drug flags.

    `kind` groups services: "visit" (诊查费), "bed" (床位费), "nursing" (护理费), "exam", "treat"; drugs are "drug".
    """

    key: str
    name: str
    list_type: str
    ceiling: float
    kind: str = "drug"
    pack_days: int = 7
    chronic: bool = False
    key_drug: bool = False
    otc: bool = False
    male_only: bool = False


CATALOGUE: tuple[Item, ...] = (
    # drugs 101 (西药中成药)
    Item("amox", "阿莫西林胶囊", "101", 18.5, pack_days=4, otc=True),
    Item("lianhua", "连花清瘟胶囊", "101", 26.8, pack_days=4, otc=True),
    Item("ibup", "布洛芬缓释胶囊", "101", 22.0, pack_days=5, otc=True),
    Item("ambroxol", "盐酸氨溴索口服溶液", "101", 31.2, pack_days=5, otc=True),
    Item("cefu", "头孢呋辛酯片", "101", 42.6, pack_days=3),
    Item("azith", "阿奇霉素片", "101", 36.9, pack_days=3),
    Item("levo", "左氧氟沙星片", "101", 28.4, pack_days=4),
    Item("omep", "奥美拉唑肠溶胶囊", "101", 24.3, pack_days=7, otc=True),
    Item("mosap", "枸橼酸莫沙必利片", "101", 33.5, pack_days=8),
    Item("pant", "泮托拉唑钠肠溶片", "101", 46.0, pack_days=7),
    Item("metro", "甲硝唑片", "101", 9.8, pack_days=5),
    Item("cele", "塞来昔布胶囊", "101", 52.7, pack_days=6),
    Item("mecob", "甲钴胺片", "101", 38.0, pack_days=10, otc=True),
    Item("amlo", "苯磺酸氨氯地平片", "101", 29.6, pack_days=14, chronic=True),
    Item("nifed", "硝苯地平控释片", "101", 33.8, pack_days=14, chronic=True),
    Item("valsar", "缬沙坦胶囊", "101", 41.5, pack_days=14, chronic=True),
    Item("irbe", "厄贝沙坦片", "101", 36.2, pack_days=14, chronic=True),
    Item("metf", "盐酸二甲双胍片", "101", 19.9, pack_days=15, chronic=True),
    Item("acarb", "阿卡波糖片", "101", 55.8, pack_days=10, chronic=True),
    Item("glarg", "甘精胰岛素注射液", "101", 178.0, pack_days=15, chronic=True, key_drug=True),
    Item("dapa", "达格列净片", "101", 128.5, pack_days=14, chronic=True, key_drug=True),
    Item("sema", "司美格鲁肽注射液", "101", 698.0, pack_days=28, chronic=True, key_drug=True),
    Item("atorv", "阿托伐他汀钙片", "101", 35.6, pack_days=14, chronic=True),
    Item("clop", "硫酸氢氯吡格雷片", "101", 62.4, pack_days=14, chronic=True),
    Item("ticag", "替格瑞洛片", "101", 189.0, pack_days=14, chronic=True, key_drug=True),
    Item("aspi", "阿司匹林肠溶片", "101", 15.2, pack_days=30, chronic=True, otc=True),
    Item("epo", "重组人促红素注射液", "101", 265.0, pack_days=10, chronic=True, key_drug=True),
    Item("calc", "骨化三醇软胶囊", "101", 48.0, pack_days=10, chronic=True),
    Item("kcl", "氯化钾缓释片", "101", 12.5, pack_days=12, chronic=True),
    Item("butyl", "丁苯酞软胶囊", "101", 156.0, pack_days=6),
    Item("ginkgo", "银杏叶提取物片", "101", 45.0, pack_days=10),
    Item("osim", "甲磺酸奥希替尼片", "101", 4980.0, pack_days=30, chronic=True, key_drug=True),
    Item("ondan", "盐酸昂丹司琼片", "101", 58.0, pack_days=5),
    Item("oxyt", "缩宫素注射液", "101", 12.0, pack_days=1),
    Item("folic", "叶酸片", "101", 16.0, pack_days=30, otc=True),
    Item("tams", "盐酸坦索罗辛缓释胶囊", "101", 58.3, pack_days=10, chronic=True, male_only=True),
    Item("finas", "非那雄胺片", "101", 72.0, pack_days=10, chronic=True, male_only=True),
    Item("montm", "蒙脱石散", "101", 18.0, pack_days=3, otc=True),
    Item("oral_rs", "口服补液盐散", "101", 9.5, pack_days=3, otc=True),
    Item("ursod", "熊去氧胆酸胶囊", "101", 88.0, pack_days=10),
    Item("levo_eye", "左氧氟沙星滴眼液", "101", 21.0, pack_days=7, otc=True),
    Item("loratad", "氯雷他定片", "101", 19.8, pack_days=6, otc=True),
    Item("hydro_cr", "丁酸氢化可的松乳膏", "101", 14.6, pack_days=7, otc=True),
    Item("vitc", "维生素C片", "101", 6.5, pack_days=10, otc=True),
    Item("calcium", "碳酸钙D3片", "101", 32.0, pack_days=15, otc=True),
    # services 201 (医疗服务项目)
    Item("visit", "门诊诊查费", "201", 25.0, kind="visit"),
    Item("visit_er", "急诊诊查费", "201", 35.0, kind="visit"),
    Item("bed", "普通病房床位费", "201", 60.0, kind="bed"),
    Item("nursing", "一级护理", "201", 42.0, kind="nursing"),
    Item("iv", "静脉输液", "201", 18.0, kind="treat"),
    Item("xcg", "血常规检查", "201", 22.0, kind="exam"),
    Item("crp", "C反应蛋白测定", "201", 30.0, kind="exam"),
    Item("xray", "X线摄影", "201", 85.0, kind="exam"),
    Item("ct", "X线计算机体层(CT)扫描", "201", 320.0, kind="exam"),
    Item("mri", "磁共振成像", "201", 680.0, kind="exam"),
    Item("us", "彩色多普勒超声检查", "201", 160.0, kind="exam"),
    Item("ecg", "常规心电图检查", "201", 28.0, kind="exam"),
    Item("echo", "超声心动图", "201", 260.0, kind="exam"),
    Item("gastro", "电子胃镜检查", "201", 380.0, kind="exam"),
    Item("glu", "血糖测定", "201", 12.0, kind="exam"),
    Item("hba1c", "糖化血红蛋白测定", "201", 65.0, kind="exam"),
    Item("crea", "肌酐测定", "201", 15.0, kind="exam"),
    Item("tcd", "经颅多普勒检查", "201", 120.0, kind="exam"),
    Item("stool", "粪便常规", "201", 15.0, kind="exam"),
    Item("leuk", "白带常规检查", "201", 20.0, kind="exam"),
    Item("psa", "前列腺特异性抗原测定", "201", 98.0, kind="exam", male_only=True),
    Item("acup", "针刺治疗", "201", 45.0, kind="treat"),
    Item("tuina", "推拿治疗", "201", 60.0, kind="treat"),
    Item("chemo", "静脉化疗", "201", 280.0, kind="treat"),
    Item("cast", "石膏固定术", "201", 240.0, kind="treat"),
    Item("dental", "龋齿充填术", "201", 150.0, kind="treat"),
    Item("deliv", "单胎顺产接生", "201", 1800.0, kind="treat"),
    Item("op_app", "阑尾切除术", "201", 2600.0, kind="treat"),
    Item("op_chole", "腹腔镜胆囊切除术", "201", 4200.0, kind="treat"),
    # consumables 301 (医用耗材)
    Item("syringe", "一次性使用无菌注射器", "301", 1.2, kind="consumable"),
    Item("infus", "一次性使用输液器", "301", 6.5, kind="consumable"),
    Item("dressing", "医用敷料", "301", 18.0, kind="consumable"),
    Item("catheter", "一次性使用导尿包", "301", 45.0, kind="consumable"),
)

SUPPLIERS = ("国药控股上海有限公司", "上药控股有限公司", "华润医药商业集团有限公司", "九州通医药集团股份有限公司",
             "上海医药分销控股有限公司", "重庆医药(集团)股份有限公司上海分公司")

EMPLOYERS = ("上海某某贸易有限公司", "上海市某某小学", "某某科技(上海)有限公司", "上海某某物流有限公司",
             "上海某某餐饮管理有限公司", "上海某某建设工程有限公司", "上海某某医院", "某某商业银行上海分行",
             "上海某某汽车配件有限公司", "上海某某物业管理有限公司")

INST_NAME_WORDS = ("仁济", "瑞金", "华山", "中山", "长海", "长征", "曙光", "龙华", "岳阳", "同仁", "新华", "第六人民",
                   "第十人民", "东方", "同济", "市一", "第九人民", "儿童", "国际", "华东", "光华", "天佑", "博爱",
                   "康宁",
                   "德济", "安康", "惠民", "和睦", "仁爱", "永康", "福康", "嘉会", "慈安", "万康", "协和", "仁和")
PHARMACY_BRANDS = ("雷允上", "华氏大药房", "第一医药", "益丰大药房", "养和堂", "国大药房", "复美大药房", "余天成堂",
                   "老百姓大药房", "童涵春堂", "蔡同德堂", "海王星辰")
