"""Demo data around Mapo-gu, Seoul. Idempotent: running it again creates nothing new and changes
nothing a person has since edited (stock counts, approvals)."""

import random
from datetime import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from customers.models import CustomerProfile
from customers.services import address_create, customer_profile_get_or_create
from insights.demo import sales_history_seed
from insights.summaries import summaries_rebuild
from partners.demo import POINT_STAFF, point_staff_seed
from payments.demo import money_history_seed
from subscriptions.demo import regulars_seed
from vendors.models import (
    Category,
    OpeningHours,
    PickupPoint,
    Product,
    Stock,
    Vendor,
    VendorHours,
)
from vendors.services import StockChange, stock_set, vendor_apply, vendor_approve, vendor_suspend

User = get_user_model()

DEMO_PASSWORD = "o2o-demo-1234"
ADMIN = ("admin@o2o.test", "운영자")
CUSTOMER = ("customer@o2o.test", "김민지")
VENDOR = ("vendor@o2o.test", "박순자")
# Every demo vendor's usual hours: weekdays 07:00-19:00, Saturday mornings.
DEMO_ROUND = [(d, time(7), time(19)) for d in range(5)] + [(5, time(8), time(13))]

CATEGORIES = [
    ("fermented", "발효유", "Fermented milk", 1),
    ("coffee", "커피", "Coffee", 2),
    ("juice", "주스·음료", "Juice & drinks", 3),
    ("salad", "샐러드·간편식", "Salads & meals", 4),
]

PRODUCTS = [
    # sku, category, Korean, English, price (KRW), description ko, description en
    (
        "yakult-light",
        "fermented",
        "야쿠르트 라이트",
        "Yakult Light",
        1200,
        "당을 줄인 작은 발효유",
        "A small fermented milk drink with less sugar",
    ),
    (
        "stomach-care",
        "fermented",
        "위 건강 발효유",
        "Stomach-care fermented milk",
        1800,
        "위 건강을 생각한 발효유",
        "Fermented milk made for a happy stomach",
    ),
    (
        "greek-yogurt",
        "fermented",
        "그릭 요거트 플레인",
        "Greek yogurt, plain",
        3200,
        "꾸덕한 무가당 그릭 요거트",
        "Thick unsweetened Greek yogurt",
    ),
    (
        "drink-yogurt-berry",
        "fermented",
        "마시는 요거트 블루베리",
        "Drinking yogurt, blueberry",
        2300,
        "",
        "",
    ),
    (
        "coldbrew-black",
        "coffee",
        "콜드브루 블랙",
        "Cold brew, black",
        3300,
        "산뜻한 콜드브루 원액 커피",
        "Crisp cold-brew coffee",
    ),
    (
        "coldbrew-latte",
        "coffee",
        "콜드브루 라떼",
        "Cold brew latte",
        3500,
        "우유와 콜드브루의 부드러운 라떼",
        "Smooth latte of milk and cold brew",
    ),
    ("decaf-latte", "coffee", "디카페인 라떼", "Decaf latte", 3500, "", ""),
    (
        "veg-juice",
        "juice",
        "하루 야채 주스",
        "Daily vegetable juice",
        2000,
        "하루 한 병 채소",
        "A bottle of vegetables a day",
    ),
    ("protein-drink", "juice", "단백질 음료 초코", "Protein drink, chocolate", 2800, "", ""),
    ("black-bean-soymilk", "juice", "검은콩 두유", "Black-bean soy milk", 1500, "", ""),
    (
        "chicken-salad",
        "salad",
        "닭가슴살 샐러드",
        "Chicken breast salad",
        6900,
        "매일 아침 만든 샐러드",
        "A salad made every morning",
    ),
    ("grain-salad", "salad", "곡물 샐러드", "Grain salad", 6500, "", ""),
    ("egg-sandwich", "salad", "에그 샌드위치", "Egg sandwich", 4200, "", ""),
]

# (name, lat, lng) around Mapo-gu: Mangwon, Hapjeong, Hongdae, Yeonnam, Seogyo, Sangam, Gongdeok.
VENDOR_SPOTS = [
    ("망원시장 순자네 카트", 37.5560, 126.9060),
    ("망원한강공원 카트", 37.5530, 126.8990),
    ("합정역 미소 카트", 37.5497, 126.9139),
    ("홍대입구 상큼 카트", 37.5572, 126.9245),
    ("연남동 숲길 카트", 37.5620, 126.9230),
    ("서교동 아침 카트", 37.5540, 126.9190),
    ("상수역 카트", 37.5478, 126.9228),
    ("성산동 카트", 37.5660, 126.9100),
    ("망원동 골목 카트", 37.5582, 126.9035),
    ("마포구청 카트", 37.5662, 126.9016),
    ("월드컵경기장 카트", 37.5683, 126.8972),
    ("상암 DMC 카트", 37.5779, 126.8895),
    ("공덕역 카트", 37.5443, 126.9516),
    ("대흥동 카트", 37.5480, 126.9420),
    ("신수동 카트", 37.5465, 126.9335),
    ("연희동 카트", 37.5680, 126.9310),
    ("동교동 카트", 37.5590, 126.9265),
    ("당인리 카트", 37.5440, 126.9190),
    ("도화동 카트", 37.5390, 126.9490),
    ("아현동 카트", 37.5540, 126.9560),
]

PICKUP_POINTS = [
    ("망원시장 입구 꽃집", "서울 마포구 포은로 지하 1", 37.5563, 126.9062, time(9), time(21)),
    ("합정역 7번 출구 편의점", "서울 마포구 양화로 45", 37.5494, 126.9144, time(0), time(23, 59)),
    ("홍대 동교동 카페", "서울 마포구 동교로 170", 37.5588, 126.9250, time(10), time(22)),
    ("마포구청역 약국", "서울 마포구 월드컵로 212", 37.5633, 126.9030, time(9), time(19)),
    ("공덕역 서점", "서울 마포구 마포대로 92", 37.5440, 126.9510, time(10), time(20)),
]


class Command(BaseCommand):
    help = "Create demo data (idempotent): vendors around Mapo-gu, products, stock, pickup points."

    def add_arguments(self, parser):
        parser.add_argument("--quiet", action="store_true", help="Don't print the logins.")

    @transaction.atomic
    def handle(self, *args, **options):
        rng = random.Random(20261123)  # the same demo every time
        created = {"users": 0, "vendors": 0, "products": 0, "pickup_points": 0}

        admin = self._user(*ADMIN, created, staff=True)
        customer_user = self._user(*CUSTOMER, created)
        profile = customer_profile_get_or_create(user=customer_user)
        customer_profile_get_or_create(user=admin)
        if not profile.addresses.exists():
            address_create(
                customer=profile,
                label="집",
                line1="서울 마포구 망원로 50",
                line2="3층",
                postal_code="04007",
                lat=37.5571,
                lng=126.9071,
            )

        categories = {}
        for slug, ko, en, pos in CATEGORIES:
            categories[slug], _ = Category.objects.get_or_create(
                slug=slug, defaults={"name_ko": ko, "name_en": en, "position": pos}
            )
        products = []
        for sku, cat, ko, en, price, dko, den in PRODUCTS:
            product, new = Product.objects.get_or_create(
                sku=sku,
                defaults={
                    "category": categories[cat],
                    "name_ko": ko,
                    "name_en": en,
                    "price": price,
                    "description_ko": dko,
                    "description_en": den,
                },
            )
            created["products"] += new
            products.append(product)

        for index, (name, lat, lng) in enumerate(VENDOR_SPOTS):
            email = VENDOR[0] if index == 0 else f"vendor{index:02d}@o2o.test"
            person = VENDOR[1] if index == 0 else f"판매자 {index:02d}"
            user = self._user(email, person, created)
            vendor = Vendor.objects.filter(user=user).first()
            if vendor is None:
                vendor = vendor_apply(
                    user=user,
                    name=name,
                    home_lat=lat,
                    home_lng=lng,
                    phone=f"010-5550-{1000 + index}",
                    bio="신선한 발효유와 커피를 싣고 동네를 돌아요.",
                )
                created["vendors"] += 1
                # Two stay pending and one is suspended, so admins have something to act on.
                if index <= 17:
                    vendor_approve(vendor_id=vendor.pk, reason="demo")
                if index == 17:
                    vendor_suspend(vendor_id=vendor.pk, reason="demo: missed health check")
            if not VendorHours.objects.filter(vendor=vendor).exists():
                # Their usual round, so an off-shift cart can be ordered from ahead of time.
                VendorHours.objects.bulk_create(
                    VendorHours(vendor=vendor, weekday=d, opens=opens, closes=closes)
                    for d, opens, closes in DEMO_ROUND
                )
            if not Stock.objects.filter(vendor=vendor).exists():
                carried = rng.sample(products, k=rng.randint(6, len(products)))
                changes = [
                    StockChange(product_id=p.pk, quantity=rng.choice([0, 2, 5, 8, 12, 20]))
                    for p in carried
                ]
                if index == 0:  # the demo vendor always has yakult on the cart
                    changes = [c for c in changes if c.product_id != products[0].pk]
                    changes.append(StockChange(product_id=products[0].pk, quantity=12))
                stock_set(vendor=vendor, actor=admin, changes=changes)

        for name, address, lat, lng, opens, closes in PICKUP_POINTS:
            point, new = PickupPoint.objects.get_or_create(
                name=name, defaults={"address": address, "lat": lat, "lng": lng}
            )
            created["pickup_points"] += new
            if new:
                OpeningHours.objects.bulk_create(
                    [
                        OpeningHours(point=point, weekday=d, opens=opens, closes=closes)
                        for d in range(7)
                    ]
                )

        # Past days of money (orders, a refund, settlements, paid payouts): payments.demo.
        created["orders"] = money_history_seed(
            vendor=Vendor.objects.get(user__email=VENDOR[0]),
            customer=profile,
            staff=admin,
            point=PickupPoint.objects.get(name=PICKUP_POINTS[1][0]),  # open around the clock
            other=Vendor.objects.get(user__email="vendor01@o2o.test"),  # no payout account
        )
        created["users"] += point_staff_seed(password=DEMO_PASSWORD)
        # Regulars of the demo vendor, and today's round when the vendor still works today.
        created["subscriptions"] = regulars_seed(
            vendor=Vendor.objects.get(user__email=VENDOR[0]),
            customer=profile,
            password=DEMO_PASSWORD,
            product=products[0],
        )
        # Past weeks at the cart of every selling cart, for the insight pages (insights.demo).
        selling = list(Vendor.objects.filter(status=Vendor.Status.APPROVED).order_by("pk"))
        created["past_sales"] = sales_history_seed(vendors=selling[:1], weeks=8, scale=1.5)
        created["past_sales"] += sales_history_seed(vendors=selling[1:], weeks=4, scale=0.4)
        summaries_rebuild()
        self.stdout.write(
            self.style.SUCCESS(
                "Demo data ready: "
                + ", ".join(f"{v} new {k}" for k, v in created.items())
                + f" ({Vendor.objects.count()} vendors, {CustomerProfile.objects.count()} customers)."
            )
        )
        if not options["quiet"]:
            self.stdout.write(
                "Logins (password for all: %s):\n  admin     %s  -> /admin/\n"
                "  customer  %s\n  vendor    %s  -> /shift/, /orders/vendor/, /round/\n"
                "  pickup point staff  %s  -> /partner/point/"
                % (DEMO_PASSWORD, ADMIN[0], CUSTOMER[0], VENDOR[0], POINT_STAFF[0])
            )
        return None

    def _user(self, email: str, name: str, created: dict, staff: bool = False):
        user = User.objects.filter(email=email).first()
        if user is None:
            if staff:
                user = User.objects.create_superuser(email=email, password=DEMO_PASSWORD, name=name)
            else:
                user = User.objects.create_user(email=email, password=DEMO_PASSWORD, name=name)
            created["users"] += 1
        return user
