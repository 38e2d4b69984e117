"""Golden bytes: one event per kind, pinned. If this fails, the wire format changed.

The wire format is frozen (docs/PROTOCOL.md): never update these strings to make a test
pass. A new kind adds a golden event here.
"""

from __future__ import annotations

import hashlib

import pytest

from coopnet.protocol import Body, Identity, NotePosted, seal, unseal
from coopnet.protocol.offers import (
    NeedPosted,
    NeedWithdrawn,
    OfferPosted,
    OfferRevised,
    OfferWithdrawn,
)
from coopnet.protocol.trades import (
    TradeAccepted,
    TradeCancelled,
    TradeDeclined,
    TradeDisputed,
    TradeProposed,
    TradeReceived,
    TradeShipped,
)

NET = hashlib.sha256(b"golden").digest()[:16]
T0 = 1_767_225_600_000

GOLDEN = {
    "node.founded": (
        "93c4779901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420d8b1b7f9ab074136938e5002"
        "89e0ab6d543e2c4cb80d7b85ae0d16dcd89858f101c0cf0000019b76daa800ac6e6f64652e666f756e646564"
        "c420efa28b0ab89da41f6c7092d1f86e881d316103ecb2a6cc0749593c7ff72f627ac4400eeb26b33f3d2816"
        "3c34422d2b484671ca7817a341ed528b4db057bc3dfed08d9f16fed21a2777eed0bfc158c0dc51a2cc22aa38"
        "17754950da14349683506404c47584ac646973706c61795f6e616d65a64f616b6c6579a461726561a24e31a3"
        "6b6579c420d8b1b7f9ab074136938e500289e0ab6d543e2c4cb80d7b85ae0d16dcd89858f1af6e6578745f6b"
        "65795f646967657374c4207d8bcb56383e053dc357dbbcbc1b6d958e111ccfb6cd0e4af12970a3d3841809"
    ),
    "note.posted": (
        "93c4979901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420d8b1b7f9ab074136938e5002"
        "89e0ab6d543e2c4cb80d7b85ae0d16dcd89858f102c420e029a0ce38a18cfa65295fd6938ea714e93cddae52"
        "e42e810d38ee53b9bfb5becf0000019b76daa801ab6e6f74652e706f73746564c420cd2797bed8cce446e8bc"
        "6927378a474e7eff9adcc188e3cd0504cb41c30e577ac4409cf77885320819b8e25d271a5f16d67b4da88848"
        "6b7be324c577057959e1363334926abbd75bc9e62b1844c7793457ecae8292606a8b0747a7a25ebfb9b6990f"
        "c41081a474657874a942726f7420f09f8d9e"
    ),
    "node.key_rotated": (
        "93c49c9901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d921403c420b8846fb78a986677e38faa14ff1c5d1c353e68f14c"
        "faf34f09b10c2915ab1f36cf0000019b76daa802b06e6f64652e6b65795f726f7461746564c420d0f8564a82"
        "30b64dea2014dca137e4f129c7c551fa15712cd78d29e814193738c44069e36244a1ddeb3bf10f4a0913cb21"
        "006f043d631ac371e37352fb8ad124fc733aba7f742e9b8a0993bc9929b8c7dfc96d43d0c7a1dfe85a69b370"
        "9fcaeb8f06c45982a36b6579c420fabe81a3cf43d7057e980e099265a55f538aa747f7eca53d3ff1bae8ca2d"
        "9214af6e6578745f6b65795f646967657374c4200a1f0cb40643d2176624db815ee3e8541cc7f6ff02a3b4fe"
        "c2400fd1b3a8ac15"
    ),
    "offer.posted": (
        "93c4989901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d921404c4202688ecfbc3e25a9bbddb3fe8997cad164e623bfde2"
        "4e3549fd0cc99e455d7731cf0000019b76daa803ac6f666665722e706f73746564c4208db820a4123d337f04"
        "8441207c23e057324bd9a30ceb12df02b68df80c978a94c440e261bb95a3f7d080b64d544d2f78398cd88ecf"
        "90011d68339fb7d64d1e43b8668c8291cbacbe1899b54e6bf508f1190be6c6230ea61b57be5822be5afe7020"
        "07c4ae8ba56f66666572a5746f6d2d31a46974656da8746f6d61746f6573a863617465676f7279a770726f64"
        "756365a87175616e74697479cd9c40a4756e6974a46772616daa756e69745f707269636501a96d696e5f6f72"
        "646572cd01f4af617661696c61626c655f756e74696ccf0000019b9ae72c00a864656c6976657279a6706963"
        "6b7570a57465726d73bb547565736461797320342d36706d20617420746865206465706f74a461726561a24e"
        "31"
    ),
    "offer.revised": (
        "93c4999901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d921405c420dd9efb770bded00423d6455a6d06d09e6e13dd2c9e"
        "22325cb59b4174328d10fdcf0000019b76daa804ad6f666665722e72657669736564c42049fd4dac9b4c4210"
        "941206de6ffd96838d046b4d91519c959a6ce07e7a99376ec44096898523173976dc6045dd5b5e295e25c5ad"
        "3e0fdaf84ccec9430031523432d28231f2b85f7f507269941b047b7fa2db547a5d255f67b3946690f8dfb09a"
        "fe03c44185a56f66666572a5746f6d2d31a87175616e74697479cd7530aa756e69745f7072696365c0a96d69"
        "6e5f6f72646572c0af617661696c61626c655f756e74696cc0"
    ),
    "offer.withdrawn": (
        "93c49b9901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d921406c42074df687700466d6ec7ee5e446b3afadbfed6e614f7"
        "7ab706db09133568cfa61bcf0000019b76daa805af6f666665722e77697468647261776ec4207a7ba932a522"
        "bde4a8fcc2427f25e3290c1ffd5ff8f4e300a8ca4a6e4e434c08c440db0d40ac413f3e0537489ff54cc5627b"
        "e1e09fbdc750539e5f9e72e0f7b44829f546dac6b0ede6710365de6b80ef0322a97abfe8f86dba1025bbfc74"
        "56c5030dc40d81a56f66666572a5746f6d2d31"
    ),
    "need.posted": (
        "93c4979901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d921407c4209fe651165612715459bb2bdceeb846d55b0e6240be"
        "4f5023c178dc461542fa07cf0000019b76daa806ab6e6565642e706f73746564c42075f6a95cd73e903b25b6"
        "de27e8f1e443fdb2b125f4db8e7d57f033664d1396d5c440773b88ede8e3b72039f1f577d5a155d02f105517"
        "f84dfddf29fa29b6adb1f4f757acffca18003a5781ebd3a72a8d02772721592504e63bcfc6e69fd1760cdd03"
        "c46b88a46e656564a6656767732d31a46974656da465676773a863617465676f7279aa64616972792d656767"
        "73a87175616e7469747978a4756e6974a57069656365ae6d61785f756e69745f707269636528a96e65656465"
        "645f6279cf0000019b864dbc00a461726561a24e31"
    ),
    "need.withdrawn": (
        "93c49a9901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d921408c420fa6d77d529f25f23cd3fe8f21e37bbec5d70a48d76"
        "27c771cc3a6dc80a34cdc3cf0000019b76daa807ae6e6565642e77697468647261776ec420b4cba21852fb9a"
        "66083d7d88209197fb49839c431cb5942cd38c6b6a91832d7ec4407a16070c722283f4463809af04d60905e2"
        "ab3b4457c14bd6c619eb5f253a191d50942cc773e8443fc85bef8e49c7f3cd581d2337226860437d35601cc0"
        "8e0908c40d81a46e656564a6656767732d31"
    ),
    "trade.proposed": (
        "93c49a9901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d921409c420d8e1bd348f3d9ac5a60cd74ecb3322fb04c4246539"
        "fbbe37edd5ffbfcfcd46f3cf0000019b76daa808ae74726164652e70726f706f736564c42004727535181e55"
        "b1bc0821343821fe13ae0f4829db4d2860c72adf59c7f79d77c440a66d67e61d8231dc3fe29f6a469a8b56a1"
        "93d91e79af827110861226ecd6cbe61a66ce6cd5f67446db3d1165fa036437d812c2b27d8d10c6b540b187ad"
        "b3ee03c45486a57472616465a3742d31a673656c6c6572a9726976657273696465a56f66666572a765676773"
        "2d7231a87175616e746974793caa756e69745f707269636523aa657870697265735f6174cf0000019b771196"
        "80"
    ),
    "trade.accepted": (
        "93c49a9901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d92140ac420ff1523570861df7a8ae2d74085c22d6d81a6b63779"
        "3f1bb43cba0f748347308dcf0000019b76daa809ae74726164652e6163636570746564c42072a06791078539"
        "dfea9a76e62d3b1a759c97b6fae91bbb35ef5a8d79888926ebc4406fd5a12345ff0ac44b790eb58f371f4ab2"
        "7142ac1992dfb416c6411a2b4e9c44c0ec24c8948616afd04d030516ec76f8bac7cfe3c03dd08cdee41b48f8"
        "0e4b0bc43d85a56275796572a7656c6d776f6f64a57472616465a3742d39a56f66666572a5746f6d2d31a871"
        "75616e74697479cd07d0aa756e69745f707269636501"
    ),
    "trade.declined": (
        "93c49a9901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d92140bc42051e044f3bdf97011fc3710bb3fb8ad950b54e0ff3b"
        "0e60dadda3bbe1b0961706cf0000019b76daa80aae74726164652e6465636c696e6564c420241851b0abe180"
        "6dd4c6b45249d10c9fee5f7c7d055c26ec43be3528aa13c73ac44053e800cd5490491de0109aa371dd0161fd"
        "2bc14411aaf1ac91680ac829acad53c00610abc01aaeb3787ae193d6cb559a42f83a38d5ef3e2234e3cdaf87"
        "be170bc42983a56275796572a7656c6d776f6f64a57472616465a3742d38a6726561736f6ea8736f6c64206f"
        "7574"
    ),
    "trade.shipped": (
        "93c4999901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d92140cc420d43a2acc615eebb25b882c9a6720f8c10bd53694a1"
        "d9a552f273906adc5166c3cf0000019b76daa80bad74726164652e73686970706564c4204ff432f554775044"
        "6ac177200e53d79d6a058c1d76bc2151688d1ed8699d6daec4400c9370265eeaa77f8792a45f85d1c71846b7"
        "459ba5d3b03d89359153007306664110eb34623d2e70c147c44b03ad822ea872956c2dc00ddcea27bd1654fd"
        "a609c41982a56275796572a7656c6d776f6f64a57472616465a3742d39"
    ),
    "trade.received": (
        "93c49a9901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d92140dc4200a425c2fdfa37593e1d08e7b4c2e1f1d86fdc4105c"
        "b2075c596f1c28d5af2869cf0000019b76daa80cae74726164652e7265636569766564c420864e47736676bc"
        "435580d31c2e61bb02235f106d396f77e04fc3155dd75eeb7cc4403c8343fe61837d31b6662f4848cdc1b0e5"
        "908163e8d4d30393afc684ed58b66aa2d76b4e1c45961388afca93248ebc379f05495570eab4e661404ca882"
        "ad1105c41882a56275796572a66f616b6c6579a57472616465a3742d31"
    ),
    "trade.cancelled": (
        "93c49b9901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d92140ec420e5607f8eb766952955c5dfbc57ebc104269f21d8c5"
        "3714375086127885c31631cf0000019b76daa80daf74726164652e63616e63656c6c6564c420e4a54fcff6ea"
        "0362b9744e1a01709517430215914e8220816d6f78f915934c99c440e6a0e29904aaddfdd830390453b9ec7c"
        "a8bc4ffd1daed6a6422f7e79f6880e0d6288be60f5ddf932d732ab972c8ee884e471ea3cc95a23abdbd12f16"
        "7209c602c42d83a56275796572a66f616b6c6579a57472616465a3742d32a6726561736f6ead706c616e7320"
        "6368616e676564"
    ),
    "trade.disputed": (
        "93c49a9901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d92140fc4208299d08e4a1ff32c364b1abece4eff2a52a1256dc3"
        "9c0ba697e1dbe457deeeeecf0000019b76daa80eae74726164652e6469737075746564c420688ffa6a72b150"
        "7a24974e36ca656fafc5cf4b05cb3dd7e162bf4d853228fe96c4403c22d35d843dde2042c88663195dd30dcf"
        "111ad2af3cb69e3c148ee15a3e8558091213c8186a9a4a0bd46583fa98fd2b2c01a582de22c16b214f484693"
        "e9340ac43983a56275796572a66f616b6c6579a57472616465a3742d33a6726561736f6eb968616c66207468"
        "65206567677320776572652062726f6b656e"
    ),
}


MARKET_BODIES: list[Body] = [
    OfferPosted(
        offer="tom-1", item="tomatoes", category="produce", quantity=40_000, unit="gram",
        unit_price=1, min_order=500, available_until=T0 + 7 * 86_400_000, delivery="pickup",
        terms="Tuesdays 4-6pm at the depot", area="N1",
    ),
    OfferRevised(offer="tom-1", quantity=30_000),
    OfferWithdrawn(offer="tom-1"),
    NeedPosted(
        need="eggs-1", item="eggs", category="dairy-eggs", quantity=120, unit="piece",
        max_unit_price=40, needed_by=T0 + 3 * 86_400_000, area="N1",
    ),
    NeedWithdrawn(need="eggs-1"),
    TradeProposed(
        trade="t-1", seller="riverside", offer="eggs-r1", quantity=60, unit_price=35,
        expires_at=T0 + 3_600_000,
    ),
    TradeAccepted(buyer="elmwood", trade="t-9", offer="tom-1", quantity=2000, unit_price=1),
    TradeDeclined(buyer="elmwood", trade="t-8", reason="sold out"),
    TradeShipped(buyer="elmwood", trade="t-9"),
    TradeReceived(buyer="oakley", trade="t-1"),
    TradeCancelled(buyer="oakley", trade="t-2", reason="plans changed"),
    TradeDisputed(buyer="oakley", trade="t-3", reason="half the eggs were broken"),
]  # fmt: skip


def _history() -> dict[str, bytes]:
    oak = Identity.from_passphrase("oakley", "golden")
    rotated, rotation = oak.rotated(following_seed=hashlib.sha256(b"third").digest())
    steps: list[tuple[Identity, Body]] = [
        (oak, oak.founding_body("Oakley", "N1")),
        (oak, NotePosted(text="Brot 🍞")),
        (rotated, rotation),
        *((rotated, body) for body in MARKET_BODIES),
    ]
    out: dict[str, bytes] = {}
    prev: bytes | None = None
    for seq, (signer, body) in enumerate(steps, start=1):
        wire = seal(
            signing_key=signer.signing_key,
            net=NET,
            author="oakley",
            seq=seq,
            prev=prev,
            at=T0 + seq - 1,
            body=body,
        )
        prev = unseal(wire, net=NET).id
        out[body.kind] = wire
    return out


@pytest.mark.parametrize("kind", sorted(GOLDEN))
def test_sealing_gives_the_golden_bytes(kind: str) -> None:
    assert _history()[kind].hex() == GOLDEN[kind]


@pytest.mark.parametrize("kind", sorted(GOLDEN))
def test_golden_bytes_unseal(kind: str) -> None:
    env = unseal(bytes.fromhex(GOLDEN[kind]), net=NET)
    assert env.kind == kind
    assert env.author == "oakley"


def test_every_registered_kind_has_a_golden_event() -> None:
    from coopnet.protocol import KINDS

    assert set(KINDS) == set(GOLDEN)
