"""The README's example flow, tested with the testing aid."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.testing import FlowHarness
from rules import birthday


async def test_greets_at_ten_local_time_with_a_single_use_code(mongo_uri: str) -> None:
    start = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
    async with FlowHarness(mongo_uri, [birthday.FLOW], start=start, channels=("sms",)) as h:
        await h.customer("cus_1", phone="+5491122334455", consents={"sms": True},
                         first_name="Ana", locale="es", birthday="1990-03-10",
                         timezone="America/Argentina/Buenos_Aires")
        await h.advance(hours=16)  # 2026-03-10 04:00 UTC = 01:00 in Buenos Aires
        assert h.to("cus_1") == []
        await h.advance(hours=9)  # 13:00 UTC = 10:00 in Buenos Aires
        greeting = h.last("cus_1")
        assert greeting.at == datetime(2026, 3, 10, 13, 0, tzinfo=UTC)
        assert greeting.text is not None and greeting.text.startswith("¡Feliz cumpleaños, Ana!")
        code = (await h.customer_doc("cus_1"))["attrs"]["code_birthday"]
        assert code in greeting.text
        await h.advance(days=30)
        assert len(h.to("cus_1")) == 1
