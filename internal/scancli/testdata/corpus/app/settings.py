import os

DEBUG = False
SECRET_KEY = "@@yZPV0BXBIp5o2ccTAJnf_JaI5sH2TA35HkDmv62V-X0w8B8yW9"  # want:secret
DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "PASSWORD": os.environ["DB_PASSWORD"]}}
ANTHROPIC_API_KEY = "sk-ant-api03-@@XUQTw_m9za5P9IgWcH1z7-YCR-baxxxFPdAy2bw9vYnQQ9BIXkGZEkT_-o3K0-vpcIrimeFg0fhoFP1bWl8on9ksZ6ZD6AA"  # want:secret
HF_TOKEN = "hf_@@vjuehinqkgylznazyumrrgxcbxnotyeujp"  # want:secret
api_key = get_secret("payments")
token = request.headers.get("Authorization")
password = form.cleaned_data["password"]
EMAIL_HOST_PASSWORD = "hunter2-IJGllfGP"  # want:secret
