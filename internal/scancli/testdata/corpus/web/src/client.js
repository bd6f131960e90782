const axios = require('axios');
// public Maps key (restricted by referrer) is still a key
const GOOGLE_KEY = 'AIza@@FLK9Q_SvgvsHOVBMhBeUlXP2qnqQmYh7_Zk'; // want:secret
const apiKey = process.env.API_KEY;
const token = localStorage.getItem('token');
export const postmanKey = 'PMAK-@@46287cced9041dff02cee737-443e210471948d33296c87009e8a7f770d'; // want:secret
function login(password) { return axios.post('/login', { password }); }
const headers = { Authorization: `Bearer ${token}` };
const NPM_TOKEN = 'npm_@@jfJ31CVuhfQ5GEgRxNEV2iLjQNhPC0pIlsW4'; // want:secret
