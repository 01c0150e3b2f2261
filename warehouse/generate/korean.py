"""Korean reference data and free-text templates the generator samples from.

Pools are small, fixed lists (plus Faker ko_KR names drawn once with a seed), so that a row's
text is a vectorised ``take`` from a pool rather than a Python call per row.
"""

from __future__ import annotations

import numpy as np

# Region (시/도), population weight, cities (시/군/구).
REGIONS: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("서울", 19.0, ("강남구", "송파구", "마포구", "노원구", "관악구", "영등포구")),
    ("경기", 26.0, ("수원시", "성남시", "고양시", "용인시", "부천시", "화성시")),
    ("인천", 6.0, ("남동구", "부평구", "연수구")),
    ("부산", 6.5, ("해운대구", "부산진구", "사하구")),
    ("대구", 4.7, ("수성구", "달서구")),
    ("광주", 2.8, ("북구", "서구")),
    ("대전", 2.8, ("유성구", "서구")),
    ("울산", 2.2, ("남구", "중구")),
    ("세종", 0.8, ("세종시",)),
    ("강원", 3.0, ("춘천시", "원주시")),
    ("충북", 3.1, ("청주시", "충주시")),
    ("충남", 4.1, ("천안시", "아산시")),
    ("전북", 3.4, ("전주시", "익산시")),
    ("전남", 3.5, ("목포시", "여수시")),
    ("경북", 5.1, ("포항시", "구미시")),
    ("경남", 6.4, ("창원시", "김해시")),
    ("제주", 1.3, ("제주시",)),
)

REGION_NAMES = np.array([r[0] for r in REGIONS], dtype=object)
REGION_WEIGHTS = np.array([r[1] for r in REGIONS]) / sum(r[1] for r in REGIONS)
# Flattened city table: city name and the index of its region.
CITY_NAMES = np.array([c for r in REGIONS for c in r[2]], dtype=object)
CITY_REGION = np.array([i for i, r in enumerate(REGIONS) for _ in r[2]])

CATEGORIES: tuple[tuple[str, tuple[str, ...], tuple[str, ...], float], ...] = (
    # category, subcategories, Korean nouns, median list price (KRW)
    (
        "food",
        ("fresh", "processed", "gift_set"),
        ("한우 세트", "과일 바구니", "김 선물세트", "홍삼 진액", "즉석밥", "견과류"),
        32000,
    ),
    (
        "beauty",
        ("skincare", "makeup", "hair"),
        ("수분 크림", "선크림", "쿠션 팩트", "샴푸", "에센스", "립스틱"),
        28000,
    ),
    ("fashion", ("women", "men", "kids"), ("니트", "패딩 점퍼", "청바지", "운동화", "셔츠", "코트"), 59000),
    (
        "home",
        ("kitchen", "bedding", "storage"),
        ("프라이팬", "이불 세트", "수납함", "머그컵", "도마", "베개"),
        35000,
    ),
    (
        "electronics",
        ("audio", "appliance", "mobile"),
        ("블루투스 이어폰", "공기청정기", "보조배터리", "전기포트", "무선 충전기", "드라이기"),
        89000,
    ),
    (
        "health",
        ("supplement", "fitness", "care"),
        ("비타민", "유산균", "요가 매트", "마사지기", "단백질 쉐이크", "오메가3"),
        42000,
    ),
)
ADJECTIVES = ("프리미엄", "데일리", "오리지널", "에코", "스페셜", "클래식", "라이트", "플러스")
BRANDS = ("한빛", "미소", "누리", "다온", "가람", "솔빛", "하늘채", "바른", "초록담", "온새미로")
STORE_FORMATS = ("department", "outlet", "mall", "street")
STORE_SUFFIX = {"department": "백화점점", "outlet": "아울렛점", "mall": "몰점", "street": "점"}

INCOME_BANDS = ("under_30m", "30_50m", "50_80m", "80_120m", "over_120m")
EDUCATION = ("high_school", "college", "bachelor", "graduate")
OCCUPATIONS = (
    "office",
    "professional",
    "self_employed",
    "public",
    "student",
    "homemaker",
    "retired",
    "other",
)
SIGNUP_CHANNELS = ("store", "web", "app", "sales_rep", "referral")
PREF_CHANNELS = ("store", "web", "app")

CALL_REASONS = ("order", "delivery", "billing", "product", "complaint", "cancel", "other")
RESOLUTIONS = ("resolved", "unresolved", "escalated")
CALL_SUMMARY: dict[str, tuple[str, ...]] = {
    "order": ("주문 내역 확인 요청, 안내 완료", "주문 옵션 변경 문의", "결제 완료 여부 확인"),
    "delivery": ("배송 지연 문의, 택배사 확인 후 안내", "배송지 오배송 신고", "파손 상품 수령, 교환 요청"),
    "billing": ("카드 이중 결제 문의", "영수증 재발행 요청", "할부 개월 변경 문의"),
    "product": ("상품 사용법 문의", "불량 의심 상품 문의, 점검 접수", "재입고 일정 문의"),
    "complaint": ("직원 응대 불만 제기", "반복된 배송 문제로 강한 불만", "환불 처리 지연 항의"),
    "cancel": ("타사 혜택 비교 후 해지 문의", "회원 탈퇴 절차 문의", "경쟁사 할인 쿠폰 언급, 해지 고민"),
    "other": ("매장 운영 시간 문의", "포인트 적립 문의", "이벤트 참여 방법 문의"),
}
VOC_TEXT: dict[str, tuple[str, ...]] = {
    "product": ("제품 품질이 기대에 못 미칩니다", "사이즈가 표기와 다릅니다", "제품이 정말 마음에 들어요"),
    "delivery": ("배송이 너무 늦어요", "포장이 훼손되어 도착했습니다", "빠른 배송 감사합니다"),
    "price": ("가격이 다른 곳보다 비쌉니다", "할인 적용이 안 되었어요", "가격 대비 만족합니다"),
    "service": ("상담원 연결이 어렵습니다", "친절한 응대 감사합니다", "문의 답변이 늦어요"),
    "staff": ("매장 직원이 불친절했어요", "직원분 설명이 자세했습니다", "계산 실수가 있었습니다"),
    "billing": ("결제 금액이 잘못 청구되었습니다", "환불이 아직 안 되었어요", "영수증 발급 요청합니다"),
    "app": ("앱 로그인이 자주 풀려요", "앱에서 결제 오류가 납니다", "앱 사용이 편리해졌어요"),
}
SUGGESTION_TEXT = (
    "신제품 공동 개발 설문에 참여하고 싶습니다",
    "매장에 무인 계산대를 늘려 주세요",
    "친환경 포장 옵션을 제안합니다",
    "회원 전용 시식 행사를 열어 주세요",
)
SURVEY_COMMENT = {
    "low": ("다시 이용할지 모르겠습니다", "불편한 점이 많았어요", "응대가 아쉬웠습니다"),
    "mid": ("보통이에요", "무난했습니다", "조금 더 개선되면 좋겠어요"),
    "high": ("항상 만족합니다", "지인에게 추천했어요", "최고의 쇼핑 경험입니다"),
}
ACTIVITY_NOTES = (
    "신상품 소개",
    "재구매 제안",
    "VIP 행사 초대",
    "견적 전달",
    "불만 사항 청취",
    "계약 조건 협의",
)
CAMPAIGN_THEMES = (
    "설맞이",
    "봄맞이",
    "여름 세일",
    "추석 선물",
    "가을 감사",
    "연말 특가",
    "VIP 감사",
    "재방문 환영",
)


def name_pool(seed: int, size: int = 4000) -> np.ndarray:
    """Korean full names drawn once from Faker's ko_KR locale (seeded, so runs repeat)."""
    from faker import Faker

    fake = Faker("ko_KR")
    fake.seed_instance(seed)
    return np.array([fake.last_name() + fake.first_name() for _ in range(size)], dtype=object)
