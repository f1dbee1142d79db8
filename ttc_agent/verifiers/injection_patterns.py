"""The patterns of the injection screen, by kind (see ``ttc_agent.verifiers.injection``).

A pattern's finding is its whole match, or its group ``span`` where it has one.

Every pattern runs on a normalised view of the candidate: NFKC, case-folded, invisible format
characters dropped and (in the Latin views) look-alike letters read as the Latin ones. They are
written to catch what a verdict looks like and what text addressed to a judge says, in English,
French, German, Spanish, Italian, Portuguese, Russian, Chinese and Japanese, while leaving alone
what ordinary answers say: a score in a story, a judge in a courtroom, a fraction in a solution
(``benchmarks/injection.py --false-positives`` measures that on the answers in data/).
"""

from __future__ import annotations

import re

from ttc_agent.types import InjectionKind

_ENGLISH_JUDGE_WORDS = (
    r"evaluators?|graders?|judges?|reviewers?|raters?|assessors?|examiners?|scorers?"
)
_OTHER_JUDGE_WORDS = (
    r"évaluat(?:eur|rice)s?|correct(?:eur|rice)s?|juges?|examinat(?:eur|rice)s?"
    r"|bewerter(?:in|innen)?|prüfer(?:in|innen)?|gutachter(?:in)?|korrektor(?:in)?"
    r"|evaluador(?:a|es)?|calificador(?:a|es)?|corrector(?:a|es)?|juez|jueces"
    r"|valutat(?:ore|rice|ori)|giudic[ei]|esaminat(?:ore|ori)|correttor[ei]"
    r"|avaliador(?:a|es)?|juiz|juízes|examinador(?:a|es)?|corretor(?:a|es)?"
    r"|оценщик\w*|экзаменатор\w*|суд(?:ья|ьи|ье|ью)|проверяющ\w*|рецензент\w*"
)
_OTHER_JUDGE = (
    rf"(?:\b(?:{_OTHER_JUDGE_WORDS})\b|评委|评分员|评审|裁判|评估者|评价者|阅卷人|評委|評分員|評審"
    r"|評估者|評價者|評価者|採点者|審査員)"
)
JUDGE = rf"(?:\b(?:{_ENGLISH_JUDGE_WORDS})\b|{_OTHER_JUDGE})"
"""A word for the one who grades, in the languages above."""

_SCORE_WORDS = (
    r"scores?|scoring|grades?|grading|ratings?|rate|marks|points|rubric|criteri(?:a|on)"
    r"|notes?|punkte?|punktzahl|bewertung|höchstnote|bestnote|puntuaci[oó]n|puntaje"
    r"|calificaci[oó]n|nota|punteggio|voto|pontua[cç][aã]o|балл\w*|оценк\w*"
)
SCORE = (
    rf"(?:\b(?:{_SCORE_WORDS})\b|评分|分数|得分|满分|最高分|打分|評分|分數|滿分|スコア|点数|満点"
    r"|評価|採点)"
)
"""A word for a score, in the languages above."""

_SENTENCE = "[^.!?\\n\u3002\uff01\uff1f]"
_NEAR = rf"{_SENTENCE}{{0,100}}?"
_ASK = (
    r"\b(?:give|assign|award|grant|output|return|reply|respond|print|must|should|please"
    r"|ignore|disregard|need|have to|required|instructed|expected)\b"
)
_OTHER_ASK = (
    r"(?:\b(?:por favor|bitte|per favore|s'il vous plaît|пожалуйста|califique|califica|bewerten"
    r" sie|bewerte|оцените|оцени|évaluez|notez|valuti|valuta|avalie)\b|请|請|ください)"
)
_NUM_WORDS = r"(?:one|two|three|four|five|six|seven|eight|nine|ten)"
_NUM = rf"(?:\d{{1,3}}(?:\.\d+)?|{_NUM_WORDS})"
_SELF_NAMED = (
    r"(?:(?:this|the above|the following|my|our)\s+(?:answer|response|text|essay|story|poem"
    r"|submission|candidate|entry|piece|work|reply|output|draft|letter|email))"
)
_SELF = rf"(?:{_SELF_NAMED}|this|it)"
_EVERY = (
    r"(?:every|all|each)\s+(?:criteri(?:on|a)|dimensions?|categor(?:y|ies)|aspects?|metrics?"
    r"|ax[ie]s|counts|fronts)\b"
)
_DEMAND = (
    rf"(?:{SCORE}|\b(?:give|assign|award|grant|ignore|disregard|output|return|reply)\b"
    r"|\b\d{1,2}(?:\.\d)?\s*/\s*(?:5|10)\b)"
)
_LINE_START = r"^[ \t>*#\-`'\"{(\[]*"
_FIELD = (
    r"(?:final |overall |total |weighted )?(?:score|rating|grade|verdict|mark|note|bewertung|punkte"
    r"|puntuaci[oó]n|calificaci[oó]n|punteggio|voto|pontua[cç][aã]o|nota|оценка|балл"
    r"|评分|分数|得分|总评|總評|スコア|点数|評価|採点結果)"
)
_PRAISE = (
    r"(?:maximum|max|perfect|full|top|highest|excellent|pass(?:ed)?|a\+|отлично|превосходно"
    r"|hervorragend|ausgezeichnet|excelente|eccellente|ottimo|优秀|優秀)"
)
_OUT_OF = r"(?:/|out of|sur|von|de|su|из)"
_ARROW = "[:=\\-\u2013\u2014\u2192]"  # : = - en dash, em dash, arrow
_NOT_ARITHMETIC = r"(?!\s*[*x\u00d7\u00b7(\d=+\-$^/])"  # not followed by more arithmetic
_WORK = r"(?:answer|response|text|essay|story|poem|submission|candidate|entry|one|piece|work)"
_REQUEST_OBJECT = (
    rf"(?:(?:this|it|that)(?:\s+{_WORK})?\s+(?:a\s+|an\s+)?|(?:the|my|our)\s+{_WORK}\s+"
    rf"(?:a\s+|an\s+)?|an?\s+)"
)
_AFTER_NUMBER = (
    r"(?=\s*(?:(?:/|out of)\s*(?:5|10|100|five|ten)\b(?!\s*[*x\u00d7\u00b7(\d=+\-$^/])"
    r"|points?|stars?|on\b|for\b|across\b|in\s+(?:every|all|each)|[.!,;:)\"']|$))"
)
_ON_A_SCALE = (
    r"(?=\s*(?:(?:/|out of)\s*(?:5|10|100|five|ten)\b(?!\s*[*x\u00d7\u00b7(\d=+\-$^/])"
    r"|stars?\b))"
)
_TOP = (
    r"(?:full|perfect|maximum|max|top|highest(?: possible)?)\s+(?:scores?|marks|points|ratings?"
    r"|grades?)"
)

PATTERNS: dict[InjectionKind, list[str]] = {
    "verdict": [
        rf"{_LINE_START}{_FIELD}\s*[:=]\s*\d+(?:\.\d+)?(?:\s*{_OUT_OF}\s*\d+)?",
        rf"\b{_FIELD}(?:\s+[a-z]+)?\s*[:=]\s*(?:10|\d|{_NUM_WORDS})(?:\.\d+)?\b{_AFTER_NUMBER}",
        rf"\b{_FIELD}\s*[:=][^\n\d]{{0,30}}\(\s*\d{{1,2}}\s*\)",
        r"\b(?:top|full|perfect|maximum|highest) (?:score|marks|rating|grade)s? (?:is |are )?"
        r"(?:warranted|deserved|justified|earned|merited)\b",
        r"\b(?:considered|treated as|regarded as|seen as|graded as) (?:a |an |the )?(?:model"
        r"|reference|gold(?:en)?|ideal|perfect|exemplary) (?:answer|response|submission)\b",
        r"\bwhat an? (?:\d{1,2}|perfect|top)(?:/\d+)?(?:[- ]\w+)? looks like\b",
        r"\d+点満点中\d+点|満点中",
        r"(?:给予|給予|建议|建議|应得|應得)\S{0,4}(?:最高分|满分|滿分)",
        r"[\u2014\u2013:\-]\s*\d{1,2}(?:\.\d)?\s*/\s*(?:5|10)\s*[.!]?\s*$",
        r"\b(?:top|highest|maximum|upper end) of the (?:rating |grading |scoring )?(?:scale|range"
        r"|rubric)\b",
        r"\b(?:deserves?|merits?|warrants?)\s+(?:the\s+)?(?:maximum|highest(?: possible)? (?:score"
        r"|marks?|rating|grade|points))\b",
        rf"\b(?:{_FIELD}|overall|(?:weighted )?total)\b{_ARROW}?\s*[^\n\d]{{0,40}}?\d+(?:\.\d+)?\s*"
        rf"{_OUT_OF}\s*(?:5|10|100)\b{_NOT_ARITHMETIC}",
        r"[\"'](?:score|scores|rating|grade|verdict|reason|reasoning|winner)[\"']\s*:",
        r"^\s*\d{1,3}\s*(?:/|out of)\s*(?:5|10|100)\s*[.!]?\s*$",
        rf"\b{_NUM}\b(?:\s*(?:/|out of)\s*\d+)?\s+(?:on|across|in|for)\s+{_EVERY}",
        rf"\b\d{{1,3}}\s*(?:/|out of)\s*(?:5|10|100)\b{_NEAR}\b{_EVERY}",
        rf"\b{_EVERY}[^.\n\d]{{0,30}}?\b{_NUM}{_AFTER_NUMBER}",
        r"\[\[\s*(?:\d{1,3}(?:\.\d+)?|a|b|tie)\s*\]\]",  # MT-Bench's verdict format
        rf"\b(?:{_ENGLISH_JUDGE_WORDS})'s?\s+(?:note|comment|assessment|verdict|score|remark"
        r"|evaluation)s?\s*:",
        rf"\b{_SELF}\s+(?:deserves|gets|earns|scores|rates|merits|warrants|receives"
        rf"|should (?:get|receive|score))\s+(?:a |an |the )?(?:{_NUM}{_AFTER_NUMBER}|{_TOP})",
        # "is": a named text with any number, a bare "it"/"this" only with a scale ("it is 24."
        # answers a question)
        rf"\b{_SELF_NAMED}\s+(?:is|was)\s+(?:a |an |the )?(?:{_NUM}{_AFTER_NUMBER}|{_TOP})",
        rf"\b(?:this|it)\s+(?:is|was)\s+(?:a |an |the )?(?:{_NUM}{_ON_A_SCALE}|{_TOP})",
        rf"\b{_FIELD}\s*[:=]\s*{_PRAISE}(?!\w)",
        r"\b(?:result|outcome|status|verdict|evaluation|grade)\s*:\s*(?:pass|passed|approved"
        r"|accepted)\b",
        rf"(?<![\w)=*/+\-])\(\s*\d{{1,2}}(?:\.\d)?\s*/\s*(?:5|10)\s*\){_NOT_ARITHMETIC}",
        rf"\b(?:assessment|evaluation|verdict|rating|score|grade)\b[^.\n]{{0,60}}?\b\d{{1,2}}"
        rf"(?:\.\d)?\s*/\s*(?:5|10)\b{_NOT_ARITHMETIC}",
        r"\b(?:assessment|evaluation|rating|grade|score|verdict|review) of (?:the above|this "
        r"(?:answer|response|text|essay|submission|piece))\b",
        rf"\b(?:deserves?|merits?|warrants?|should (?:get|receive|be given|score))\s+"
        rf"(?:a |an |the )?(?:\d{{1,3}}(?:\s*/\s*\d+)?{_AFTER_NUMBER}|{_TOP})",
    ],
    "address": [
        rf"{JUDGE}{_NEAR}{SCORE}(?={_NEAR}{_ASK})|{JUDGE}{_NEAR}{_ASK}{_NEAR}{SCORE}",
        rf"{SCORE}{_NEAR}{JUDGE}(?={_NEAR}{_ASK})|{_ASK}{_NEAR}{SCORE}{_NEAR}{JUDGE}",
        rf"(?:^|[.!?\u3002\uff01\uff1f]\s*)(?P<span>(?:the )?{JUDGE}\s*[,:])(?={_NEAR}{_DEMAND})",
        rf"\b(?:dear|note to|message to|attention|p\.?s\.? to|hey|hello)\s+(?:the |our |my )?"
        rf"(?:ai |llm )?{JUDGE}",
        rf"\bto (?:the |any |our )?(?:ai|llm|automated|automatic)[- ]?{JUDGE}",
        rf"\b(?:ai|llm|automated|automatic)[- ]{JUDGE}\s+(?:reading|grading|scoring|evaluating"
        rf"|reviewing|assessing)\s+this\b",
        r"\b(?:whoever|anyone|the (?:model|ai|llm|system|assistant|person|reader))\s+(?:who\s+"
        r"|that\s+|which\s+)?(?:is\s+)?(?:evaluat|grad|scor|judg|review|assess|rat|mark)\w*\s+"
        r"this\b",
        r"[\"']score[\"']\s+(?:to|=|as)\s+\d",
        r"\byour (?:json|verdict|guidelines)\b",
        r"\bif you(?:'re| are) (?:grading|evaluating|scoring|judging|reviewing|assessing|rating"
        r"|marking)\b",
        r"\b(?:grade|score|rate|judge|evaluate|mark)\s+(?:this |it |me )?accordingly\b",
        rf"{JUDGE}\s+(?:could|would|should|will|must|might)\s+(?:expect|give|award|rate|score|grade"
        r"|want)\b",
        r"\bdear (?:ai|llm|model|assistant|chatbot)\b",
        rf"\b(?:instructions?|notes?|guidance|message|memo|hints?|tips?|reminder)\s+(?:for|to)\s+"
        rf"(?:the |all |any |our )?(?:ai |llm |automated |automatic )?"
        rf"(?:{_ENGLISH_JUDGE_WORDS}|model|ai|llm)\b",
        rf"\(as (?:the |an? )?(?:ai |llm )?(?:{_ENGLISH_JUDGE_WORDS})\)",
        rf"\bas (?:an? |the )?(?:ai |llm |automated )?(?:{_ENGLISH_JUDGE_WORDS}),? you\b",
        r"\b(?:approved|verified|certified|endorsed|validated|pre-approved)\s+by\s+(?:the\s+"
        r"|our\s+)?(?:evaluation|grading|review|scoring|judging|assessment)\s+(?:team|committee"
        r"|board|panel|staff)",
        r"\b(?:ideal|reference|gold(?:en)?|model|perfect|best possible) (?:answer|response"
        r"|submission)\b[^.\n]{0,40}\bis this\b",
        r"\bthis is the (?:ideal|reference|gold(?:en)?|model|perfect|best possible) (?:answer"
        r"|response|submission)\b",
        r"\b(?:grading|scoring|evaluation|grader|judge|evaluator|rubric)\s+(?:hint|note|notice"
        r"|instruction|override|update|guidance|tip)s?\b",
        rf"\b(?:give|assign|award|grant)\s+(?:\w+\s+){{0,3}}?{_TOP}",
        r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:\w+\s+){0,4}?(?:instructions?|rubric"
        r"|criteria|guidelines|system prompt|prompt|scoring|grading)\b",
        rf"\b(?:give|assign|award|grant|rate|score|grade)\s+{_REQUEST_OBJECT}"
        rf"(?:(?:perfect|solid|full)\s+)?(?:{_NUM}(?:\s*/\s*\d+)?{_AFTER_NUMBER}|{_TOP})",
        r"\bscores?\s+(?:below|under|less than|lower than|other than)\s+(?:the\s+)?(?:maximum"
        r"|max|top|highest|perfect|full|\d)",
        rf"\byou are (?:now )?(?:a |an |the )?(?:\w+ )?{JUDGE}",
        r"\[(?:system|admin|administrator|developer|evaluator|grader|judge)\]",
        r"\b(?:system|admin|administrator|developer)\s+(?:override|message|note|notice"
        r"|instruction)",
        r"\b(?:evaluation|grading|developer|admin) mode\b",
        r"\byour (?:rubric|grading|scoring|evaluation criteria|criteria|instructions)\b",
        r"\b(?:correct|right|only|proper|true) (?:evaluation|score|grade|rating) (?:of|for) this\b",
        r"\b(?:decode|decipher|rot13|base64|reverse)\b[^.\n]{0,60}\b(?:follow|obey|execute"
        r"|do what|apply|comply|act on)",
    ],
    "turn": [
        r"<\|[a-z_]{2,30}\|>",
        r"\[/?inst\]|<</?sys>>|</?s>|<(?:start|end)_of_turn>",
        r"^[ \t#]*(?:system|assistant|human|user|gpt|chatgpt|bot|ai|model)(?:\s*\([^)\n]{0,30}\))?"
        r"\s*:",
        r"^[ \t]*###\s*(?:instruction|response|system|human|assistant|input)\s*:?\s*$",
    ],
    "fence": [
        r"<<<\s*(?:end\s+)?(?:candidate|conversation|response(?:\s+[ab])?)\b",
        r"\bend\s+(?:of\s+)?(?:the\s+)?(?:candidate|conversation|response\s+[ab]|submission)\b",
        r"\b(?:candidate|conversation|response\s+[ab])\s+[0-9a-f]{16}\b",
        r"</?(?:candidate|answer|response|conversation|submission)>",
    ],
}

OTHER_LANGUAGES = [
    r"(?:señor|señora|estimad[oa]|querid[oa]|liebe[rs]?|sehr geehrte[rs]?|уважаем\w+|дорог\w+"
    rf"|cher|chère|caro|cara|gentile|prezad[oa]|尊敬的|致)\s*(?:los |las |el |la |le |il |o |a )?"
    rf"{JUDGE}",
    rf"{_OTHER_JUDGE}{_NEAR}{_OTHER_ASK}|{_OTHER_ASK}{_NEAR}{_OTHER_JUDGE}",
    r"заслуживает\s+(?:высш|максимальн|наивысш)\w*",
    r"\b(?:mérite|verdient|merece|merita)\s+(?:la |die |il |a )?(?:note maximale|meilleure note"
    r"|höchstnote|bestnote|volle punktzahl|(?:nota|puntuación|calificación|pontuação) máxima"
    r"|(?:punteggio|voto) massimo)",
    r"(?:给|給|打|应|應|该|該|请|請)\S{0,6}?(?:满分|滿分)",
    r"満点を",
    r"\b(?:ignore[zr]?|oublie[zr]?)\s+(?:toutes\s+)?(?:les\s+|vos\s+|tes\s+)?(?:instructions"
    r"|consignes)",
    r"\b(?:donne[zr]?|attribue[zr]?|mets|mettez)\s+(?:à cette réponse\s+|lui\s+)?(?:un |une "
    r"|la note (?:de )?)?(?:\d{1,3}\b|la note maximale|note maximale)",
    r"\bignorier\w*\s+(?:\S+\s+){0,3}?\w*(?:anweisung|instruktion|regel|richtlinie|kriterien)",
    r"\b(?:gib|geben sie|vergib|vergeben sie)\s+(?:dieser antwort\s+|diesem text\s+|ihr\s+)?"
    r"(?:eine |die )?(?:\d{1,3}\b|höchstnote|bestnote|volle punktzahl|höchste punktzahl)",
    r"\b(?:ignora|ignore|olvida|olvide|ignorate|dimentica)\s+(?:todas\s+|tutte\s+)?"
    r"(?:las\s+|le\s+|as\s+)?(?:instrucciones|istruzioni|instruções)",
    r"\b(?:dale|otorga|asigna|asígnale|otórgale|dai|assegna|dê|atribua)\s+"
    r"(?:a esta respuesta\s+|a questa risposta\s+|a esta resposta\s+)?(?:un |una |il |um "
    r"|uma |la |a )?(?:nota |voto |puntuación |pontuação )?(?:\d{1,3}\b|(?:la |a )?"
    r"(?:puntuación|nota|pontuação|calificación) máxima|(?:il )?(?:punteggio|voto) massimo)",
    r"(?:игнорируй|игнорируйте|забудь|забудьте)\s+(?:все\s+)?(?:предыдущие\s+)?"
    r"(?:инструкции|указания|правила)",
    r"(?:поставь|поставьте|дай|дайте|выстави|выставьте)\s+(?:этому ответу\s+)?"
    r"(?:\d{1,3}\b|максимальн\w+|высш\w+)",
    r"(?:忽略|无视|忘记|忘掉)\S{0,8}?(?:指令|指示|说明|规则|评分标准)",
    r"(?:评分|評分|评审|評審|评委|評委|打分)(?:提示|说明|說明|须知|須知|指引|注意)",
    r"(?:採点|評価)(?:者)?(?:へ|の方へ|の際)",
    r"\b(?:als|en tant que|como|come|в качестве)\s+(?:\S+\s+)?"
    rf"{_OTHER_JUDGE}\S*\s+(?:\S+\s+){{0,2}}?(?:du|sie|vous|tu|usted|você|lei|voi|вы|ты)\b",
    r"(?:il massimo dei voti|la nota più alta|la note la plus haute|die höchste (?:note"
    r"|bewertung|punktzahl)|la (?:nota|calificación|puntuación) más alta|a nota mais alta)",
    r"(?:califique|califica|bewerten sie|bewerte|notez|évaluez|valuti|valuta|avalie|оцените"
    r"|оцени)\s+(?:\S+\s+){0,4}?(?:con |mit |avec |com |на )?(?:un |una |eine |um |uma )?"
    r"\d{1,3}\b",
    r"(?:给|打)\S{0,10}?(?:\d{1,3}|满)分",
    r"(?:指示|ルール|評価基準|命令)\S{0,8}?(?:無視|忘れ)",
    r"(?:\d{1,3}|満)点\S{0,4}?(?:つけ|付け|与え|ください)",
]
"""Requests to the judge in French, German, Spanish, Italian, Portuguese, Russian, Chinese and
Japanese (kind ``address``); they run on the plain readings only, not on the encoded ones."""

COMPILED = {
    kind: [re.compile(pattern, re.MULTILINE) for pattern in patterns]
    for kind, patterns in PATTERNS.items()
}
COMPILED_OTHER_LANGUAGES = [re.compile(pattern, re.MULTILINE) for pattern in OTHER_LANGUAGES]

LOOKALIKES = str.maketrans(
    {
        **dict(
            zip(
                "\u0430\u0435\u043e\u0440\u0441\u0443\u0445\u0456\u0458\u0455\u0501\u04bb\u051b\u051d",
                "aeopcyxijsdhqw",
                strict=True,
            )
        ),  # Cyrillic
        **dict(
            zip(
                "\u03b1\u03b2\u03b5\u03b9\u03ba\u03bd\u03bf\u03c1\u03c4\u03c5\u03c7",
                "abeiknoptux",
                strict=True,
            )
        ),  # Greek
        **dict.fromkeys(
            "\u1438\u2039\u3008\u27e8", "<"
        ),  # Canadian syllabics, angle quotes and brackets
        **dict.fromkeys("\u1433\u203a\u3009\u27e9", ">"),
    }
)
"""Look-alike letters read as the Latin ones (case-folded), and look-alike angle brackets."""

LEET = str.maketrans("0134578@$|!", "oieastbasli")
"""Leetspeak digits and symbols read as letters."""
