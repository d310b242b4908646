def test_home_lists_my_folders(personas):
    from tests.conftest import login

    response = login(personas.editor).get("/")
    assert response.status_code == 200
    assert b"Team" in response.content
    assert b"Elsewhere" not in response.content
