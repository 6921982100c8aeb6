<?php
/*
Plugin Name: Hello cairn
Version: 0.3.1
*/
function hello_cairn() { return 'Hello from the sample site'; }
