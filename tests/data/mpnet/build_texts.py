"""Writes texts.json (the inputs for make_reference.py). All texts written for this file; run: python3 build_texts.py"""
import json, os

LONG_A = (
    "The old lighthouse on the northern cape had not been lit for eleven years when the town council decided, "
    "after a long and surprisingly bitter debate, to restore it. Nobody could agree on why. The fishermen said a "
    "working light would make the reef safer on foggy nights, although every boat in the harbour now carried a "
    "satellite receiver that knew the position of each rock to within a metre. The shopkeepers hoped that tourists "
    "would climb the spiral stairs and then buy ice cream on the way down. The retired schoolteacher who had kept "
    "the keys since the last keeper left argued that a town which lets its landmarks fall apart slowly forgets what "
    "it is for. In the end the money came from a bakery, of all places, which promised to fund the new lens if the "
    "council let it print a small drawing of the tower on every paper bag. The work took two summers. Masons from "
    "the valley replaced the cracked stones near the base, an engineer from the capital rewired the lamp room, and a "
    "group of children painted the railings a red that was, everyone agreed, slightly too bright. On the night the "
    "light was switched on again, half the town walked out along the cliff path with torches and blankets. The beam "
    "swept over the water once, then again, and for a moment the crowd was completely silent, as if each person had "
    "remembered something they had not thought about in a long time. Then somebody's dog barked, the children "
    "cheered, and the bakery handed out warm rolls shaped, a little clumsily, like small towers. The schoolteacher "
    "did not give the keys back. Nobody asked her to. She still climbs the stairs every evening at dusk, checks the "
    "lamp, writes the weather in a notebook with a green cover, and walks home before the first stars come out. "
    "Visitors sometimes ask her whether she is paid for this. She laughs and says that the light pays her in its "
    "own way: every ship that passes the reef safely on a dark night is a small thank-you, even if the sailors on "
    "board never learn her name, and that is more than most jobs can offer."
)

LONG_B = (
    "Designing a tokenizer that produces exactly the same output as a reference implementation is mostly an exercise "
    "in humility. The first version always looks correct: it splits on whitespace, separates punctuation, lowercases "
    "the input, looks every piece up in a vocabulary of about thirty thousand entries, and falls back to sub-word "
    "fragments prefixed with two hash signs when a whole word is missing. Then the test suite starts feeding it "
    "strange input. A non-breaking space (U+00A0) must count as whitespace, but a zero-width joiner must not. A "
    "combining acute accent must disappear when accents are stripped, yet the base letter before it must survive. "
    "Chinese, Japanese and Korean ideographs must each become a separate token, although Hangul syllables and "
    "Japanese kana are treated as ordinary letters and glued to their neighbours. Control characters such as the "
    "bell (0x07) or the escape byte (0x1B) are deleted, while tabs, carriage returns and line feeds turn into plain "
    "spaces. Words longer than one hundred characters are replaced by a single unknown token rather than being "
    "broken into pieces. Every one of these rules is documented somewhere, usually in a comment inside a function "
    "that nobody has touched for six years, and every one of them matters when the goal is bit-for-bit agreement. "
    "After the tokenizer agrees, the model itself has its own traps: position identifiers that start at two instead "
    "of zero because the padding index is one, relative attention buckets that depend on the sign of the distance, "
    "layer normalisation with an epsilon of one in a hundred thousand rather than one in a trillion, and a mean "
    "pooling step that must ignore the padded positions, otherwise short sentences in a batch come out subtly "
    "different from the same sentences encoded alone. Finally the vector is divided by its Euclidean length, and "
    "the comparison with the reference is done with a tolerance that is tight enough to catch a wrong constant but "
    "loose enough to forgive the order in which floating point additions happen on different processors. It is "
    "tedious work, but there is a particular satisfaction in watching thousands of numbers line up to the sixth "
    "decimal place."
)

LONG_C_PARTS = [
    "Chapter one. The expedition left the coastal village at dawn on the third of March, eleven people, four mules, "
    "and a borrowed theodolite that nobody fully trusted. The plan, written neatly on two pages by the geologist, was "
    "to follow the river upstream for nine days, cross the saddle between the twin peaks before the spring storms, "
    "and measure the glacier that the old maps drew as a pale blue tongue reaching almost to the treeline.",
    "By the second afternoon the plan had already changed twice. A bridge marked on the map turned out to be three "
    "rotten planks and a rope; the mules refused it politely but firmly, and the group spent four hours building a "
    "ford from flat stones while the cook, who had been promised that this was a walking holiday, sang loudly and "
    "out of tune to keep everyone's spirits up. That evening they camped in a meadow full of small yellow flowers "
    "whose name nobody knew, and the botanist, delighted, pressed six of them between the pages of a paperback novel.",
    "The weather held until the fifth day. Then a grey wall of cloud came over the ridge in less than an hour, the "
    "temperature fell by fifteen degrees, and the rain turned first to sleet and then to wet, heavy snow. They sat in "
    "the tents for thirty-six hours playing cards, telling increasingly improbable stories, and rationing the "
    "chocolate with the seriousness of bankers. The surveyor used the time to recalibrate the theodolite, which, he "
    "announced with some pride, had been reading nearly half a degree wrong since the village.",
    "When the sky finally cleared, the world looked new. Every branch carried a line of snow, the river ran loud and "
    "brown, and the twin peaks stood so sharp against the blue that they seemed close enough to touch. The crossing of "
    "the saddle was slow and cold but uneventful, apart from one mule that sat down in a drift and would not move "
    "until the cook offered it the last apple. On the far side, the valley opened into a wide bowl of broken rock.",
    "The glacier was there, but it was not the glacier on the map. Where the old survey showed ice reaching down to "
    "the trees, there was now a long slope of grey gravel, polished boulders, and a milky lake. The ice itself began "
    "almost two kilometres further up, thin and dirty at its edge, with streams of meltwater running out from beneath "
    "it. The geologist walked to the snout in silence, laid a tape measure on the ground, and then sat on a rock for a "
    "long time without writing anything down.",
    "They spent six days measuring: positions of the ice edge every hundred metres, the depth of the lake, the height "
    "of old moraines that marked where the ice had stood a century before. The numbers went into three notebooks and, "
    "as a precaution, onto the backs of two postcards that the botanist had been saving. On the last night, around a "
    "small fire of dry juniper, someone asked what the measurements would be used for. Nobody answered at first. Then "
    "the surveyor said that in fifty years another group would come here with better instruments, and they would want "
    "to know exactly what it looked like now, and that this seemed like a reason good enough to carry a heavy "
    "theodolite over a mountain.",
]
LONG_C = "\n\n".join(LONG_C_PARTS)

LONG_CJK = (
    "今天早上我在河边散步，看见一位老人正在教他的孙女钓鱼。小女孩很认真，可是每次鱼漂一动，她就急着把鱼竿拉起来，结果什么也没钓到。"
    "老人并不着急，只是笑着告诉她，钓鱼最重要的是耐心，要等鱼真正咬住鱼钩再动手。太阳慢慢升高，河面上的雾气也散了。"
    "快到中午的时候，小女孩终于钓到了一条小鱼，她高兴得跳了起来，可是看了一会儿，又把鱼放回了河里。老人问她为什么，"
    "她说这条鱼还太小，应该让它回家找妈妈。我站在旁边，忽然觉得这个上午过得特别有意义。"
    "東京の駅はいつも人でいっぱいですが、朝早い時間だけは少し静かです。コーヒーを買って、ホームで電車を待ちながら、"
    "今日の予定を手帳に書きました。"
    "下午我们去了博物馆，看了很多古代的瓷器和书画。讲解员是一位年轻的大学生，她把每件文物背后的故事都讲得非常生动，"
    "连平时对历史不感兴趣的弟弟也听得入了迷。离开的时候，天已经黑了，街上的灯一盏一盏地亮起来，我们一边走一边讨论刚才看到的东西。"
    "서울의 가을 하늘은 정말 높고 맑습니다. 공원에서 친구들과 함께 김밥을 먹고 오래 이야기를 나누었습니다."
)

texts = [
    "",
    " ",
    "\t\n",
    "   \u00a0\u3000  ",
    "hello",
    "Hello",
    "HELLO",
    "antidisestablishmentarianism",
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on the corner of the street.",
    "What time does the last train to the airport leave on Sundays?",
    "I can't believe it's already November; where did the year go?",
    "She said, \"Don't forget the keys,\" and closed the door behind her.",
    "   leading and trailing spaces are part of this sentence   ",
    "\n\nStarts with blank lines and ends with a tab\t",
    "ThIs SeNtEnCe HaS rAnDoM cApItAlIzAtIoN, dOeS iT mAtTeR?",
    "Crème brûlée à la française, naïve café, jalapeño, Ångström, façade, Øresund, Straße.",
    "Combining marks: e\u0301 a\u0308 n\u0303 o\u0302 vs precomposed \u00e9 \u00e4 \u00f1 \u00f4",
    "Z\u0351\u0336a\u0337\u0315l\u0334\u0360g\u0335\u0358o\u0336\u0301 text with stacked diacritics",
    "我喜欢在周末去图书馆看书，然后和朋友一起吃晚饭。",
    "今日はとても良い天気ですね。散歩に行きましょう！",
    "한국어 문장도 토큰화가 잘 되는지 확인해 봅시다.",
    "مرحبا بالعالم، هذه جملة قصيرة باللغة العربية.",
    "यह हिंदी में लिखा गया एक छोटा सा वाक्य है।",
    "Привет, мир! Это предложение на русском языке.",
    "Γειά σου κόσμε, αυτή είναι μια ελληνική πρόταση.",
    "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ",
    "שלום עולם, זה משפט בעברית.",
    "Emoji: 😀 🎉 🚀 ❤️ 👍🏽 🇯🇵 🇫🇷",
    "Family \U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466 and rainbow flag \U0001F3F3\uFE0F\u200D\U0001F308 and \U0001F469\U0001F3FE\u200D\U0001F4BB",
    "RTL marks: \u200fright-to-left mark\u200f, \u200eleft-to-right mark\u200e, override \u202eabc\u202c done",
    "Zero\u200bwidth\u200bspace, soft\u00adhyphen, word\u2060joiner, BOM\ufeffinside",
    "Control chars: bell\u0007 null\u0000 escape\u001b[31mred\u001b[0m backspace\u0008 del\u007f end",
    "Line one\r\nLine two\rLine three\u000bvertical tab\u000cform feed\u0085next line\u2028line sep\u2029para sep",
    "\u0001\u0002\u0003",
    "Fullwidth ＡＢＣ　１２３ and ligature ﬁ ﬂ and roman Ⅻ and super²³ and ½ ⅔",
    "<p>Hello <b>world</b>! <a href=\"https://example.com/?q=1&amp;r=2\">link</a></p>",
    "<!DOCTYPE html>\n<html lang=\"en\">\n  <head><title>Test &lt;page&gt;</title></head>\n  <body><div class='x'>&nbsp;&copy; 2024</div></body>\n</html>",
    "# Heading\n\n* item **bold** and _italic_\n* `inline code`\n\n> quote\n\n[link](http://example.org) | a | b |\n|---|---|",
    "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n    println!(\"{:?}\", v);\n}",
    "def fib(n):\n\tif n < 2:\n\t\treturn n\n\treturn fib(n - 1) + fib(n - 2)  # naive\n",
    "{\"id\": 42, \"name\": \"sembed\", \"tags\": [\"rust\", \"nlp\"], \"ok\": true, \"score\": -1.5e-3, \"none\": null}",
    "SELECT  u.id ,\tu.name\n  FROM   users u\n\tWHERE u.created_at >= '2024-01-01'   AND  u.active=1\nORDER BY u.name DESC ;",
    "Contact me at jane.doe+newsletter@example.co.uk or visit https://www.example.com/path/to/page.html?utm_source=x&id=123#section-2",
    "ftp://files.example.net/pub/archive.tar.gz and mailto:info@example.org and 192.168.0.1:8080",
    "On 2024-02-29 at 23:59:59 UTC (Feb 29th, 2024) the price rose 12.5% to $1,234,567.89 or €1.234.567,89.",
    "3.14159265358979323846264338327950288419716939937510",
    "1 2 3 4 5 6 7 8 9 10 100 1000 10000 100000 1000000",
    "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!! ????? ...... ,,,,, ;;;; --- ___ *** ###",
    "Wait... what?!?! No way!!! Really??? :) :-( ;-) <3 ^_^ ¯\\_(ツ)_/¯",
    "a",
    ".",
    "[UNK] <s> </s> <pad> <unk> <mask>",
    "Paris is the <mask> of France.",
    "x" * 300,
    "Supercalifragilisticexpialidocious" * 9,
    "a" * 100,
    "b" * 101,
    "-".join(["segment%02d" % i for i in range(30)]),
    "don't won't shouldn't y'all it's O'Brien's rock'n'roll",
    "New York-based start-up co-founder e-mail state-of-the-art",
    "The cat sat on the mat. The dog sat on the log. The bird sat on the word.",
    "sentence embeddings",
    "Sentence embeddings map text to dense vectors so that similar meanings are close together.",
    LONG_A,
    LONG_B,
    LONG_C,
    LONG_CJK,
    "the " * 382,
    "the " * 383,
    "lorem ipsum dolor sit amet " * 150,
]

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "texts.json"), "w", encoding="utf-8") as f:
    json.dump(texts, f, ensure_ascii=False, indent=1)
    f.write("\n")
print(len(texts), "texts")
