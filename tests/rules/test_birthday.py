"""The README's example flow, tested with the testing aid."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.testing import FlowHarness, PureHarness
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


def test_greets_in_portuguese() -> None:
    """The README's pure-harness example."""
    h = PureHarness([birthday.FLOW], start=datetime(2026, 3, 9, 12, 0, tzinfo=UTC),
                    channels=("sms",))
    h.customer("cus_1", phone="+5511987654321", consents={"sms": True},
               first_name="João", locale="pt", birthday="1990-03-10")
    h.advance(hours=25)  # 10:00 in Buenos Aires, the default timezone
    assert h.last("cus_1").text == (
        f"Feliz aniversário, João! 🎂 Ganhe 15% de desconto com o código {h.codes[0]['_id']}.")


def test_the_whatsapp_template_gets_the_name_and_the_code() -> None:
    h = PureHarness([birthday.FLOW], start=datetime(2026, 3, 9, 12, 0, tzinfo=UTC),
                    channels=("whatsapp",))
    h.customer("cus_1", phone="+5491122334455", consents={"whatsapp": True},
               first_name="Ana", birthday="1990-03-10")
    h.advance(days=2)
    [greeting] = [m for m in h.messages("cus_1") if m["direction"] == "out"]
    assert greeting["template"] == {"name": "birthday_greeting", "language": "es",
                                    "params": ["Ana", h.customer_doc("cus_1")["attrs"][
                                        "code_birthday"]]}
