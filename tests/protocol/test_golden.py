"""Golden bytes: one event per kind, pinned. If this fails, the wire format changed.

The wire format is frozen (docs/PROTOCOL.md): never update these strings to make a test
pass. A new kind adds a golden event here.
"""

from __future__ import annotations

import hashlib

import pytest

from coopnet.protocol import Body, Identity, NotePosted, seal, unseal
from coopnet.protocol.aid import (
    AidFulfilled,
    AidPledgeAccepted,
    AidPledged,
    AidPledgeWithdrawn,
    AidRequested,
    AidWithdrawn,
    AlertRaised,
    AlertResolved,
)
from coopnet.protocol.membership import (
    MembershipApplied,
    MembershipConsented,
    MembershipObjected,
    MembershipObjectionWithdrawn,
    MembershipRetired,
)
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
APPLICATION = hashlib.sha256(b"millbrook's application").digest()

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
    "aid.requested": (
        "93c4999901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d921410c42044af416f52acb20a4563045445acbc2a00bc0b86bf"
        "720c0c1b200d1d863052e9cf0000019b76daa80fad6169642e726571756573746564c420435c68829ebbfdfe"
        "7e9d1a6df0b6e92ea47f443e2b9a9757996b25492cb35776c440505319739c5260707c45f0e75592375090cf"
        "35b5f4bc0972fc989c026d4f0369e643b9a91009ff03d4a05580c9d98b9abdc859cb73a43c5df6182542ee3b"
        "a707c4d38aa772657175657374a3722d31a863617465676f7279a4666f6f64a7757267656e6379a863726974"
        "6963616ca96e65656465645f6279cf0000019b77488500a87175616e7469747904a461726561a24e31ab6465"
        "736372697074696f6ed92b486f74206d65616c7320666f7220612066616d696c792061667465722061206b69"
        "746368656e2066697265a97261697365645f6174cf0000019b76ccec60af706c65646765645f6c6f63616c6c"
        "7901a6726561736f6ebd6e6f742066756c6c7920706c65646765642077697468696e2039303073"
    ),
    "aid.pledged": (
        "93c4979901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d921411c420398ca0051362adaf8c4b6017508a09e92261ea1211"
        "5567462bdfff719b11659bcf0000019b76daa810ab6169642e706c6564676564c4202097e08d8f120abb5339"
        "cf7f23fe12c4974d953c08ca0855c742218227cc7035c44007f2310246db529ac5100b1625e1ed1ec90d33b1"
        "f42c9152a8deb9ef83dee814c2fd8a987a8b33b77d357f5674af7809d9882534d89b02513936a55bffe3e20b"
        "c44585a9726571756573746572a7656c6d776f6f64a772657175657374a3722d37a6706c65646765a3702d31"
        "a477686174ab3420686f74206d65616c73a87175616e7469747904"
    ),
    "aid.pledge_accepted": (
        "93c49f9901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d921412c42006554a85b57ed95a0a9dd36314d36ba85d1f28ed8b"
        "57ad8a0b1f2b5954557f11cf0000019b76daa811b36169642e706c656467655f6163636570746564c420d2ac"
        "f066017cfdd052c403b85b2c68357d7ea2f1b24d6d2e7099c0e5a8792846c4407a8f9333eef1cfefbd8fdad8"
        "f4d23bd418d38c6c2af2546e28a84d24caecffec11d1e516e332450596c82342e868af3b07776c244880c67c"
        "7106f16e758b1c0dc43284a772657175657374a3722d31a7706c6564676572a7656c6d776f6f64a6706c6564"
        "6765a3702d32a87175616e7469747903"
    ),
    "aid.fulfilled": (
        "93c4999901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d921413c420ff7dc6ca2bbff4ffc144e508e47ba543f496e02124"
        "0ed32917f4f235221b20b3cf0000019b76daa812ad6169642e66756c66696c6c6564c420c4eb379c305d3353"
        "0e81d174bf26ee04828af158185dc5b7c19de8f5e119e28fc4404c7eeb6a9ce5f80931570e1023b7aea041b2"
        "7630406c37ec937ca400e2b90f44799a9e9d1d8ee73131cec779d3a6821348f18c9e254c52834e96ea27715f"
        "a408c42382a772657175657374a3722d31a7706c65646765739192a7656c6d776f6f64a3702d32"
    ),
    "aid.withdrawn": (
        "93c4999901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d921414c4203686d5fd0536bbe7f5d0347e7e5c59560bc5a6ce54"
        "655f834a645c4ff9f34663cf0000019b76daa813ad6169642e77697468647261776ec420ceff7f30a6e55212"
        "a2a987c09744e14fbfed4732e975a55c9a8722471cdda356c4405310bb9d076b890a4622a2a988f0803603b4"
        "9589a84b6d1915aa0fe650a212cbaec6bc80124ebee2f9ddd4b6a3f49da13bac31c91759532c06fc4f5cd9fd"
        "0503c40d81a772657175657374a3722d33"
    ),
    "aid.pledge_withdrawn": (
        "93c4a09901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d921415c420cf888d4939bb4d16be122e34521b0014acd8d7231f"
        "10a4daf4beeda08676d088cf0000019b76daa814b46169642e706c656467655f77697468647261776ec4201d"
        "df5bde4d2a9a80255d588126da4822d6091b8cc71f0038893a23bb125cd505c44077dfdd1f9a75e34f3f4197"
        "472eca97a060e466452e16d53e024ed50a4ec81f79ec14ce7d093f377392456c18537d6a76a14f10d2e09045"
        "5dc0156c37944dc901c42a83a9726571756573746572a7656c6d776f6f64a772657175657374a3722d37a670"
        "6c65646765a3702d31"
    ),
    "alert.raised": (
        "93c4989901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d921416c420c75a34d2141e54a7b398f359a179eed3c13f572c7b"
        "482970a4fabec6744a1669cf0000019b76daa815ac616c6572742e726169736564c420e7385383f3e6088dbd"
        "93e9eed95f7b95db2cc6a5929ded5e47546759f0f93a07c440aef53ac38a55ce90591690cf59519dc3b52c8e"
        "643151b943cd3194e93d3eb34e5198fb7bd2370cf01662c510d5ef1d00b8b58e89cb56d3ce23a1f44d876c1e"
        "04c46185a5616c657274a3612d31aa616c6572745f6b696e64a5666c6f6f64a87365766572697479a7776172"
        "6e696e67a461726561a24e31a6616476696365d9234d6f76652063617273206f6666204d696c6c204c616e65"
        "206265666f72652036706d2e"
    ),
    "alert.resolved": (
        "93c49a9901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d921417c420c8d9b89417ac92410ed57f5b16df56dc7078f75dda"
        "513bda3e346ac32d87919acf0000019b76daa816ae616c6572742e7265736f6c766564c42060303293c87072"
        "d9fdad241adb300824750bc473347c366b31a19439d8bd575ec44035d4a5581884148e39352f3d9c5e1de1bf"
        "d7e18ae7bb9405843ae181c8d730a7f7dcace6ebc8d9e1020864567e415b57a2a12265d12a9e05d223b7ffea"
        "206c01c40b81a5616c657274a3612d31"
    ),
    "membership.applied": (
        "93c49e9901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d921418c4204ffa64b7c1a1e5e6d340e2cf99f497b4319231a402"
        "87acaa3bed386797f42542cf0000019b76daa817b26d656d626572736869702e6170706c696564c420372fb0"
        "a256cf7638447263c2cc4a09ad75fca9df20401a5c895723c68df9fdc3c440d2025322919706c1b72676dc74"
        "f28845753a298b8561f801e416a55b545bbea9d8623163cae509c88b8bda1cfddd89cf55174f2c764579741d"
        "5732e2c4c96f06c46584ac646973706c61795f6e616d65a64f616b6c6579a461726561a24e31a561626f7574"
        "be4120666f6f6420636f2d6f70206f662031343020686f757365686f6c6473a6726561736f6ebb5765206261"
        "6b6520627265616420616e64206e6565642065676773"
    ),
    "membership.consented": (
        "93c4a09901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d921419c4203d9c21a558d2ccdd158cb7aea1af0cf95a2f72f785"
        "53caf4a8aa89027f4736fbcf0000019b76daa818b46d656d626572736869702e636f6e73656e746564c42007"
        "bd09e0192fe41d2ad8e81531c6305424a13136388d2c1d2d0d36fab34cfe7bc440fe271f781f966f49c157ee"
        "9c52868acbc211fabec53b2cc5086dea56eb932cbf95e08a3eed732f6509dc642eff3143c54787a20280a450"
        "e07f85ea09ebf5c700c44382a96170706c6963616e74a96d696c6c62726f6f6bab6170706c69636174696f6e"
        "c420e2c38b5c353fca3ee30bf9549783b7d557309431182027b2288bfd03a4112d74"
    ),
    "membership.objected": (
        "93c49f9901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d92141ac420b298e5dbd59f30b42527321888050fa5f88f463698"
        "57d37358a86495d2317977cf0000019b76daa819b36d656d626572736869702e6f626a6563746564c420bcbb"
        "5808dbc3b4d355b501640dc9a6777358bce1be428a7c729afdc8da41547bc440bdab5d8d7046fc4ba52da5e8"
        "d783f2db4999722d90bf88f9c2f117760054d4f6a504d23ce71d2587493693058edff50345c1bbfdc8da7c5a"
        "bafd46a0f5b1510bc47a83a96170706c6963616e74a96d696c6c62726f6f6bab6170706c69636174696f6ec4"
        "20e2c38b5c353fca3ee30bf9549783b7d557309431182027b2288bfd03a4112d74a6726561736f6ed92e5468"
        "656972206b657920776173207573656420627920616e6f7468657220636f2d6f70206c617374206d6f6e7468"
    ),
    "membership.objection_withdrawn": (
        "93c4aa9901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d92141bc420486ea0cefc6da14f2ea8862b0f3e883a3698bef6b5"
        "de442e3aad1547b704c0f6cf0000019b76daa81abe6d656d626572736869702e6f626a656374696f6e5f7769"
        "7468647261776ec42007bd09e0192fe41d2ad8e81531c6305424a13136388d2c1d2d0d36fab34cfe7bc4404a"
        "9b5f43926355a2b7543d415eff138066b45f7881eae1815c2ae810f9daceee6b78afedc5ac489cd5989107f9"
        "aacdf98319037a1ce17456fdcc01060e18c505c44382a96170706c6963616e74a96d696c6c62726f6f6bab61"
        "70706c69636174696f6ec420e2c38b5c353fca3ee30bf9549783b7d557309431182027b2288bfd03a4112d74"
    ),
    "membership.retired": (
        "93c49e9901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d92141cc420a327daeaf83f17f719d0831553742f00260b6c37b8"
        "287250aaac47580add3f86cf0000019b76daa81bb26d656d626572736869702e72657469726564c420b96011"
        "15678ce3e8a335b2a5e8ae7c8b6aac94f5a9ff3a86de9c9eae22a0a681c440c1e5edb196ae83e311f1c326f0"
        "7a081c3fa69e5b2a1793d7b6e29ef27902ef6795c3e7e62ad7a767835d565c084b598523f4df1778d24b88c8"
        "a5552e1200f90bc41c81a6726561736f6eb36d6572676564207769746820456c6d776f6f64"
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
    AidRequested(
        request="r-1", category="food", urgency="critical", needed_by=T0 + 7_200_000,
        quantity=4, area="N1", description="Hot meals for a family after a kitchen fire",
        raised_at=T0 - 900_000, pledged_locally=1, reason="not fully pledged within 900s",
    ),
    AidPledged(requester="elmwood", request="r-7", pledge="p-1", what="4 hot meals", quantity=4),
    AidPledgeAccepted(request="r-1", pledger="elmwood", pledge="p-2", quantity=3),
    AidFulfilled(request="r-1", pledges=[("elmwood", "p-2")]),
    AidWithdrawn(request="r-3"),
    AidPledgeWithdrawn(requester="elmwood", request="r-7", pledge="p-1"),
    AlertRaised(alert="a-1", alert_kind="flood", severity="warning", area="N1",
                advice="Move cars off Mill Lane before 6pm."),
    AlertResolved(alert="a-1"),
    MembershipApplied(display_name="Oakley", area="N1", about="A food co-op of 140 households",
                      reason="We bake bread and need eggs"),
    MembershipConsented(applicant="millbrook", application=APPLICATION),
    MembershipObjected(applicant="millbrook", application=APPLICATION,
                       reason="Their key was used by another co-op last month"),
    MembershipObjectionWithdrawn(applicant="millbrook", application=APPLICATION),
    MembershipRetired(reason="merged with Elmwood"),
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


@pytest.mark.parametrize("kind", sorted(GOLDEN))
def test_decode_unsealed_gives_what_unseal_gives(kind: str) -> None:
    from coopnet.protocol import decode_unsealed

    wire = bytes.fromhex(GOLDEN[kind])
    assert decode_unsealed(wire) == unseal(wire, net=NET)


def test_every_registered_kind_has_a_golden_event() -> None:
    from coopnet.protocol import KINDS

    assert set(KINDS) == set(GOLDEN)


@pytest.mark.parametrize("body", [NotePosted(text="Brot 🍞"), *MARKET_BODIES], ids=lambda b: b.kind)
def test_seal_envelope_is_what_unseal_gives_back(body: Body) -> None:
    """A node takes its own events from `seal_envelope` without verifying them again: that
    must be exactly the Envelope any receiver gets from `unseal`, and so must the decode of
    bytes a worker process has unsealed (`decode_unsealed`)."""
    from coopnet.protocol import decode_unsealed, seal_envelope

    ident = Identity.from_passphrase("oakley", "golden")
    env = seal_envelope(
        signing_key=ident.signing_key, net=NET, author="oakley", seq=7,
        prev=hashlib.sha256(b"prev").digest(), at=T0, body=body,
    )  # fmt: skip
    assert env == unseal(env.wire, net=NET) == decode_unsealed(env.wire)
