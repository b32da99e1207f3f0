import { authenticationScenarios } from './scenarios/authentication.ts';

authenticationScenarios('Mqtt');
