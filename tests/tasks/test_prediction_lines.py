"""`predict`'s plain-text lines show each answer next to the input it answers."""

from tasks import get_recipe


def test_translation_line_is_translation_tab_input():
    recipe = get_recipe("translation")
    result = {"text": "A man rides a bicycle.", "translation": "Ein Mann fährt Rad.", "score": -0.4}
    assert recipe.format_prediction(result) == "Ein Mann fährt Rad.\tA man rides a bicycle."
    empty = {"text": "", "translation": "", "score": 0.0}
    assert recipe.format_prediction(empty) == "\t"


def test_captioning_and_sentiment_lines_show_their_input():
    caption = {"image": "photo.jpg", "caption": "a dog runs", "score": -0.2}
    assert get_recipe("captioning").format_prediction(caption) == "a dog runs\tphoto.jpg"
    review = {"text": "Great film.", "label": "pos", "probabilities": {"neg": 0.1, "pos": 0.9}}
    assert get_recipe("sentiment").format_prediction(review) == "pos\t0.9000\tGreat film."
