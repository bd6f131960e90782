API_TOKEN = ENV.fetch('API_TOKEN')
SLACK_TOKEN = 'xoxb-@@183654610735-8735570636060-T4pw3GCl4vcLNHLzzd2GljiK' # want:secret
def secret_key_base = Rails.application.credentials.secret_key_base
password_confirmation = params[:password_confirmation]
